#include "npeff/core/progress.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>

namespace npeff {

std::string format_duration(double seconds) {
  char buf[64];
  if (!std::isfinite(seconds)) return "?";
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else {
    const auto s = static_cast<long long>(seconds);
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
  spdlog::info("{}: {:.1f}% ({}/{} {}, {:.3g} {}/s, ETA {})", what_,
               total_ > 0 ? 100.0 * done_ / total_ : 100.0, done_, total_, unit_, rate, unit_,
               format_duration(eta));
}

void Progress::finish() {
  const double elapsed = elapsed_seconds();
  spdlog::info("{}: done, {} {} in {} ({:.3g} {}/s)", what_, done_, unit_, format_duration(elapsed),
               elapsed > 0 ? done_ / elapsed : 0.0, unit_);
}

}  // namespace npeff
