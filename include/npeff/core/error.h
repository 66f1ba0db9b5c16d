// Two error tiers (DEVELOPERS.md):
//  - NPEFF_CHECK(cond, msg...) throws npeff::Error for user-facing problems (bad input files,
//    bad flags, unsupported devices). The CLI maps it to exit code 2.
//  - NPEFF_ASSERT(cond, msg...) throws npeff::InternalError for broken invariants (bugs).
//    The CLI maps it to exit code 1.
// Only main() catches.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace npeff {

/// A problem the user can fix: bad input, bad flag, missing file, unsupported device.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// An optimisation that diverged (non-finite loss, or a blow-up rule of the stage): the run stops
/// with its own exit code (kExitDiverged) and keeps its last good checkpoint, so a rerun with a
/// smaller learning rate can start over or, with the same settings, from that checkpoint.
class DivergedError : public Error {
 public:
  explicit DivergedError(const std::string& what) : Error(what) {}
};

/// Exit codes of the npeff binary (README, docs/troubleshooting.md).
constexpr int kExitInternal = 1;  ///< a bug in npeff (InternalError, LibTorch errors)
constexpr int kExitBadInput = 2;  ///< npeff::Error: bad input, flag, file or device
constexpr int kExitDiverged = 3;  ///< DivergedError: decompose, sae or train diverged

/// A broken internal invariant: a bug in npeff.
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& what) : std::logic_error(what) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append_all(os, rest...);
}
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  append_all(os, args...);
  return os.str();
}
[[noreturn]] void throw_internal(const char* file, int line, const char* cond,
                                 const std::string& msg);
}  // namespace detail

}  // namespace npeff

#define NPEFF_CHECK(cond, ...)                                    \
  do {                                                            \
    if (!(cond)) {                                                \
      throw ::npeff::Error(::npeff::detail::concat(__VA_ARGS__)); \
    }                                                             \
  } while (0)

/// Throws npeff::DivergedError (exit code 3) with the concatenated message when cond is false.
#define NPEFF_CHECK_DIVERGED(cond, ...)                                              \
  do {                                                                               \
    if (!(cond)) throw ::npeff::DivergedError(::npeff::detail::concat(__VA_ARGS__)); \
  } while (0)
#define NPEFF_FAIL(...) throw ::npeff::Error(::npeff::detail::concat(__VA_ARGS__))

#define NPEFF_ASSERT(cond, ...)                                              \
  do {                                                                       \
    if (!(cond)) {                                                           \
      ::npeff::detail::throw_internal(__FILE__, __LINE__, #cond,             \
                                      ::npeff::detail::concat(__VA_ARGS__)); \
    }                                                                        \
  } while (0)
