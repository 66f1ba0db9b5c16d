// Logging to stderr (stdout is reserved for results and --json summaries).
//
// A thin facade over spdlog, compiled in its own library without LibTorch's include paths:
// pip's LibTorch 2.x ships its own fmt headers, which must not meet the fmt that the system
// spdlog was built with. Messages are assembled from their arguments with operator<<.
#pragma once

#include <string>

#include "npeff/core/error.h"

namespace npeff::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

/// Sets up the stderr logger at `level` (trace|debug|info|warn|error|off); throws npeff::Error
/// for an unknown level. Safe to call more than once.
void configure(const std::string& level);
bool enabled(Level level);
void write(Level level, const std::string& message);

template <typename... Args>
void debug(const Args&... args) {
  if (enabled(Level::kDebug)) write(Level::kDebug, detail::concat(args...));
}
template <typename... Args>
void info(const Args&... args) {
  if (enabled(Level::kInfo)) write(Level::kInfo, detail::concat(args...));
}
template <typename... Args>
void warn(const Args&... args) {
  if (enabled(Level::kWarn)) write(Level::kWarn, detail::concat(args...));
}
template <typename... Args>
void error(const Args&... args) {
  if (enabled(Level::kError)) write(Level::kError, detail::concat(args...));
}

}  // namespace npeff::log
