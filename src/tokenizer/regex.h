// PCRE2 (UTF + UCP, JIT when available) for the pre-tokenizer patterns that HF `tokenizers` runs
// with Oniguruma: `\p{L}`, `\p{N}`, `\s` and lookahead behave alike in both for these patterns
// (checked against HF fixtures on every shared-data text, see tests/unit/test_tokenizer_*).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace npeff::tokenizer {

class Regex {
 public:
  // Throws npeff::Error naming the pattern and PCRE2's message when it does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-empty, non-overlapping matches [start, end) in `text` (valid UTF-8), left to right.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::unique_ptr<Code> code_;
};

}  // namespace npeff::tokenizer
