#include "npeff/core/progress.h"

#include "npeff/core/log.h"

#include <cmath>
#include <cstdio>

namespace npeff {

std::string format_duration(double seconds) {
  char buf[64];
  if (!std::isfinite(seconds)) return "?";
  // Three digits where they fit: a 22 ms run is "22.5ms", not "0.0s". Each bound is where the
  // next format would round up into the one after it.
  if (seconds < 0.09995) {
    std::snprintf(buf, sizeof buf, "%.1fms", 1e3 * seconds);
  } else if (seconds < 9.995) {
    std::snprintf(buf, sizeof buf, "%.2fs", seconds);
  } else if (seconds < 59.95) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else {
    const auto s = std::llround(seconds);
    if (s < 3600)
      std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
    else
      std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", s / 3600, (s / 60) % 60, s % 60);
  }
  return buf;
}

Progress::Progress(std::string what, std::int64_t total, std::string unit, double interval_seconds)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      interval_(interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_log_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(std::int64_t done) {
  done_ += done;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_log_).count() < interval_) return;
  last_log_ = now;
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  const double eta = rate > 0 ? (total_ - done_) / rate : NAN;
  char line[256];
  std::snprintf(line, sizeof line, "%s: %.1f%% (%lld/%lld %s, %.3g %s/s, ETA %s)", what_.c_str(),
                total_ > 0 ? 100.0 * done_ / total_ : 100.0, static_cast<long long>(done_),
                static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(),
                format_duration(eta).c_str());
  log::info(line);
}

void Progress::finish() {
  const double elapsed = elapsed_seconds();
  char line[256];
  std::snprintf(line, sizeof line, "%s: done, %lld %s in %s (%.3g %s/s)", what_.c_str(),
                static_cast<long long>(done_), unit_.c_str(), format_duration(elapsed).c_str(),
                elapsed > 0 ? done_ / elapsed : 0.0, unit_.c_str());
  log::info(line);
}

}  // namespace npeff
