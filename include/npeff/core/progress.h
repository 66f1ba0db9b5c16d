// Progress with rate and ETA for long-running loops, logged at info level (stderr) at most
// every `interval_seconds`, so that logs from SLURM jobs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace npeff {

class Progress {
 public:
  Progress(std::string what, std::int64_t total, std::string unit, double interval_seconds = 2.0);
  /// Adds `done` units; logs when the interval has passed.
  void advance(std::int64_t done);
  /// Logs the final line (total time and mean rate).
  void finish();
  double elapsed_seconds() const;

 private:
  std::string what_, unit_;
  std::int64_t total_, done_ = 0;
  double interval_;
  std::chrono::steady_clock::time_point start_, last_log_;
};

/// "1h02m03s" / "4m05s" / "16.1s" / "6.12s" / "22.5ms"; "?" when not finite.
std::string format_duration(double seconds);

}  // namespace npeff
