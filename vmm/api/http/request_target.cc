#include "vmm/api/http/request_target.h"

namespace vmfork::api {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> percent_decode(std::string_view text, PlusIsSpace plus) {
  std::string decoded;
  decoded.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && plus == PlusIsSpace::kYes) {
      decoded += ' ';
    } else if (c != '%') {
      decoded += c;
    } else {
      if (i + 2 >= text.size() || hex_digit(text[i + 1]) < 0 || hex_digit(text[i + 2]) < 0) {
        return make_error(ErrorCode::kInvalidArgument, "bad percent-encoding at byte " +
                                                           std::to_string(i) + " of '" +
                                                           std::string(text) + "'");
      }
      decoded += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
      i += 2;
    }
  }
  return decoded;
}

Result<RequestTarget> parse_target(std::string_view target) {
  if (!target.starts_with('/')) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the request target must start with '/', not '" + std::string(target) + "'");
  }
  RequestTarget result;
  const size_t question = target.find('?');
  auto path = percent_decode(target.substr(0, question), PlusIsSpace::kNo);
  if (!path) return path.error();
  result.path = std::move(*path);
  if (question == std::string_view::npos) return result;

  std::string_view rest = target.substr(question + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2"
    const size_t equals = pair.find('=');
    auto key = percent_decode(pair.substr(0, equals), PlusIsSpace::kYes);
    if (!key) return key.error();
    auto value = percent_decode(
        equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1),
        PlusIsSpace::kYes);
    if (!value) return value.error();
    result.query[std::move(*key)] = std::move(*value);
  }
  return result;
}

}  // namespace vmfork::api
