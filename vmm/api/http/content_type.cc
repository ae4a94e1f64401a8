#include "vmm/api/http/content_type.h"

#include <cctype>
#include <string>

namespace vmfork::api {

bool is_accepted_body_type(std::string_view content_type) {
  std::string media;
  for (const char c : content_type.substr(0, content_type.find(';'))) {
    if (c != ' ' && c != '\t')
      media += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return media.empty() || media == "application/json" ||
         media == "application/x-www-form-urlencoded";
}

}  // namespace vmfork::api
