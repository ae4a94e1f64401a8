#include "vmm/cli/log_level.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace vmfork::cli {

const std::map<std::string, spdlog::level::level_enum>& log_level_names() {
  static const std::map<std::string, spdlog::level::level_enum> names{
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"off", spdlog::level::off},
  };
  return names;
}

CLI::Validator log_level_transform() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto& names = log_level_names();
        const auto found = names.find(CLI::detail::to_lower(text));
        if (found == names.end()) {
          return "unknown log level '" + text + "' (use trace, debug, info, warn, error or off)";
        }
        text = std::to_string(static_cast<int>(found->second));
        return {};
      },
      "", "log level");
}

void setup_logging(spdlog::level::level_enum level) {
  // spdlog's default logger writes to stdout, which belongs to --json.
  auto logger = spdlog::stderr_color_mt("vmfork");
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace vmfork::cli
