#include "cli_common.h"

#include <iostream>

namespace mlprt::cli {

int report_error(std::string_view message, int exit_code) {
  std::cerr << "mlprt: error: " << message << std::endl;
  return exit_code;
}

int report_runtime_error(const Status& status) {
  return report_error(status.message(), kExitRuntimeError);
}

int report_usage_error(std::string_view message) {
  return report_error(cat(message, " (run with --help for the flags)"), kExitUsageError);
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  size_t pos = 0;
  while (true) {
    size_t end = text.find(',', pos);
    if (end == std::string_view::npos) {
      items.emplace_back(text.substr(pos));
      return items;
    }
    items.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += "'" + names[i] + "'";
  }
  return out;
}

}  // namespace mlprt::cli
