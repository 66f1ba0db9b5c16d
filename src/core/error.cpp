#include "npeff/core/error.h"

namespace npeff::detail {

void throw_internal(const char* file, int line, const char* cond, const std::string& msg) {
  std::ostringstream os;
  os << "internal error (please report): " << file << ":" << line << ": assertion '" << cond
     << "' failed";
  if (!msg.empty()) os << ": " << msg;
  throw InternalError(os.str());
}

}  // namespace npeff::detail
