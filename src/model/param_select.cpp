#include "npeff/core/error.h"
#include "npeff/model/per_example_grad.h"

namespace npeff::model {

namespace {
// Matches name[n] against the element of `pattern` at p ('?', a '[...]' class with ranges and
// a leading '^' for negation, or a literal); sets `next` to the element's end. An unclosed '['
// is a literal.
bool match_one(const std::string& pattern, size_t p, char c, size_t& next) {
  if (pattern[p] == '?') {
    next = p + 1;
    return true;
  }
  if (pattern[p] == '[') {
    const size_t close = pattern.find(']', p + 2);
    if (close != std::string::npos) {
      size_t i = p + 1;
      const bool negate = pattern[i] == '^';
      if (negate) ++i;
      bool in = false;
      for (; i < close; ++i) {
        if (i + 2 < close && pattern[i + 1] == '-') {
          in = in || (c >= pattern[i] && c <= pattern[i + 2]);
          i += 2;
        } else {
          in = in || c == pattern[i];
        }
      }
      next = close + 1;
      return in != negate;
    }
  }
  next = p + 1;
  return pattern[p] == c;
}
}  // namespace

bool glob_match(const std::string& pattern, const std::string& name) {
  // Iterative wildcard matching with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0, next = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && match_one(pattern, p, name[n], next)) {
      p = next;
      ++n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

ParameterSelection ParameterSelection::parse(const CausalLM& model, const std::string& spec) {
  ParameterSelection sel;
  sel.patterns_ = spec.empty() ? model.default_params() : spec;
  std::vector<std::string> include, exclude;
  size_t start = 0;
  while (start <= sel.patterns_.size()) {
    const size_t comma = sel.patterns_.find(',', start);
    std::string item =
        sel.patterns_.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty())
      (item[0] == '!' ? exclude : include).push_back(item[0] == '!' ? item.substr(1) : item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  NPEFF_CHECK(!include.empty(), "--params '", sel.patterns_,
              "' selects nothing (no include pattern)");
  const auto& params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].name;
    bool in = false, out = false;
    for (const auto& p : include) in = in || glob_match(p, name);
    for (const auto& p : exclude) out = out || glob_match(p, name);
    if (!in || out) continue;
    NPEFF_CHECK(!model.is_embedding(static_cast<int>(i)), "--params selects ", name,
                ": per-example gradients of embeddings are not supported (exclude it, e.g. '!",
                name, "')");
    ParameterSlice s;
    s.index = static_cast<int>(i);
    s.name = name;
    s.shape = params[i].tensor.sizes().vec();
    s.numel = params[i].tensor.numel();
    s.offset = sel.total_;
    sel.total_ += s.numel;
    sel.slices_.push_back(std::move(s));
  }
  NPEFF_CHECK(!sel.slices_.empty(), "--params '", sel.patterns_, "' matches no parameter of ",
              model.config().summary(), " (names look like ", params[params.size() / 2].name,
              "; npeff model-info --list shows them)");
  return sel;
}

bool ParameterSelection::contains(int index) const {
  for (const auto& s : slices_) {
    if (s.index == index) return true;
  }
  return false;
}

}  // namespace npeff::model
