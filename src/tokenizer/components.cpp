// Normalizers, pre-tokenizers and decoders with HF `tokenizers` semantics (the Rust sources of
// tokenizers' pre_tokenizers/, normalizers/ and decoders/ define the behaviour reproduced here).
#include <algorithm>
#include <array>

#include "npeff/core/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/utf8.h"

namespace npeff::tokenizer {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_split_behavior(std::string_view name) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  NPEFF_FAIL("unknown split behavior '", name,
             "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

void Pattern::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  if (regex) {
    regex->find_all(text, out);
    return;
  }
  if (literal.empty()) return;
  for (size_t pos = text.find(literal); pos != std::string_view::npos;
       pos = text.find(literal, pos + literal.size())) {
    out.emplace_back(pos, pos + literal.size());
  }
}

namespace {

// ---- Splitting (HF NormalizedString::split) --------------------------------------------------

struct Span {
  size_t begin, end;
  bool flag;  // match (before the behaviour is applied) / removed (after)
};

// Appends the pieces of `piece` split by `matches` (sorted, non-overlapping) to `out`.
void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches,
                 SplitBehavior behavior, bool invert, std::vector<Piece>& out) {
  const std::string& s = piece.text;
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) spans.push_back({prev, b, invert});
    spans.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != s.size()) spans.push_back({prev, s.size(), invert});

  std::vector<Span> result;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      result = std::move(spans);  // (a copy trips GCC 12's -Wnonnull false positive)
      break;
    case SplitBehavior::kIsolated:
      for (const Span& sp : spans) result.push_back({sp.begin, sp.end, false});
      break;
    case SplitBehavior::kContiguous:
      for (const Span& sp : spans) {
        if (sp.flag == previous_match && !result.empty()) {
          result.back().end = sp.end;
        } else {
          result.push_back({sp.begin, sp.end, false});
        }
        previous_match = sp.flag;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& sp : spans) {
        if (sp.flag && !previous_match && !result.empty()) {
          result.back().end = sp.end;
        } else {
          result.push_back({sp.begin, sp.end, false});
        }
        previous_match = sp.flag;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->flag && !previous_match && !result.empty()) {
          result.back().begin = it->begin;
        } else {
          result.push_back({it->begin, it->end, false});
        }
        previous_match = it->flag;
      }
      std::reverse(result.begin(), result.end());
      break;
  }
  for (const Span& sp : result) {
    if (sp.flag || sp.end == sp.begin) continue;  // removed, or empty (HF drops empty splits)
    out.push_back(Piece{s.substr(sp.begin, sp.end - sp.begin), piece.at_start && sp.begin == 0});
  }
}

void split_all(std::vector<Piece>& pieces, const Pattern& pattern, SplitBehavior behavior,
               bool invert) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  std::vector<std::pair<size_t, size_t>> matches;
  for (const Piece& p : pieces) {
    matches.clear();
    pattern.find_all(p.text, matches);
    split_piece(p, matches, behavior, invert, out);
  }
  pieces.swap(out);
}

// Each character satisfying `pred` is one match (tokenizers' split by a char predicate).
template <typename Pred>
void split_chars(std::vector<Piece>& pieces, Pred pred, SplitBehavior behavior) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  std::vector<std::pair<size_t, size_t>> matches;
  for (const Piece& p : pieces) {
    matches.clear();
    for (size_t i = 0; i < p.text.size();) {
      const size_t n = utf8::sequence_length(static_cast<unsigned char>(p.text[i]));
      if (pred(utf8::decode_at(p.text, i))) matches.emplace_back(i, i + n);
      i += n;
    }
    split_piece(p, matches, behavior, false, out);
  }
  pieces.swap(out);
}

std::string replace_all(const std::string& s, const Pattern& pattern, const std::string& with) {
  std::vector<std::pair<size_t, size_t>> matches;
  pattern.find_all(s, matches);
  if (matches.empty()) return s;
  std::string out;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    out.append(s, prev, b - prev).append(with);
    prev = e;
  }
  out.append(s, prev, std::string::npos);
  return out;
}

// ---- Byte-level alphabet (GPT-2's bytes_to_unicode) -----------------------------------------

struct ByteLevelAlphabet {
  std::array<std::string, 256> byte_to_utf8;  // the character standing for each byte
  std::array<int, 0x144> char_to_byte{};      // code points < 0x144 map back; -1 otherwise
  ByteLevelAlphabet() {
    char_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      utf8::append(byte_to_utf8[b], cp);
      char_to_byte[cp] = b;
    }
  }
};
const ByteLevelAlphabet& alphabet() {
  static const ByteLevelAlphabet a;
  return a;
}

// ---- Normalizers -------------------------------------------------------------------------------

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text, bool&) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text, bool& start_moved) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    pattern_.find_all(text, matches);
    // HF aligns replacement characters with the last character of the match, so a match at the
    // start that is longer than one character, or replaced by nothing, moves the start.
    if (!matches.empty() && matches[0].first == 0 &&
        (content_.empty() ||
         matches[0].second > utf8::sequence_length(static_cast<unsigned char>(text[0]))))
      start_moved = true;
    text = replace_all(text, pattern_, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Every byte of the text becomes its character of the byte-level alphabet.
class ByteLevelNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text, bool&) const override {
    const ByteLevelAlphabet& a = alphabet();
    std::string mapped;
    mapped.reserve(text.size() * 2);
    for (unsigned char b : text) mapped += a.byte_to_utf8[b];
    text.swap(mapped);
  }
};

// ---- Pre-tokenizers ----------------------------------------------------------------------------

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) pattern_.regex = std::make_shared<Regex>(kGpt2Pattern);
  }
  void split(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& p : pieces) {
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
      }
    }
    if (pattern_.regex) split_all(pieces, pattern_, SplitBehavior::kIsolated, false);
    const ByteLevelAlphabet& a = alphabet();
    std::string mapped;
    for (Piece& p : pieces) {
      mapped.clear();
      for (unsigned char b : p.text) mapped += a.byte_to_utf8[b];
      p.text.swap(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  Pattern pattern_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(std::vector<Piece>& pieces) const override {
    split_all(pieces, pattern_, behavior_, invert_);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {
    space_.literal = " ";
    marker_.literal = replacement_;
  }
  void split(std::vector<Piece>& pieces) const override {
    for (Piece& p : pieces) {
      p.text = replace_all(p.text, space_, replacement_);
      const bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts &&
          (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start))) {
        p.text.insert(0, replacement_);
      }
    }
    if (split_) split_all(pieces, marker_, SplitBehavior::kMergedWithNext, false);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  Pattern space_, marker_;
};

// Splits with a predicate on single characters (WhitespaceSplit, Punctuation, CharDelimiterSplit,
// BertPreTokenizer's two passes).
template <typename Pred>
class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  CharSplitPreTokenizer(Pred pred, SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void split(std::vector<Piece>& pieces) const override { split_chars(pieces, pred_, behavior_); }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};
template <typename Pred>
std::unique_ptr<PreTokenizer> make_char_split(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharSplitPreTokenizer<Pred>>(pred, behavior);
}

class BertPreTokenizer final : public PreTokenizer {
 public:
  void split(std::vector<Piece>& pieces) const override {
    split_chars(pieces, utf8::is_whitespace, SplitBehavior::kRemoved);
    split_chars(pieces, utf8::is_punctuation, SplitBehavior::kIsolated);
  }
};

class FixedLengthPreTokenizer final : public PreTokenizer {
 public:
  explicit FixedLengthPreTokenizer(size_t length) : length_(length) {}
  void split(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) {
      size_t begin = 0, chars = 0;
      for (size_t i = 0; i < p.text.size();) {
        i += utf8::sequence_length(static_cast<unsigned char>(p.text[i]));
        if (++chars == length_ || i == p.text.size()) {
          out.push_back(Piece{p.text.substr(begin, i - begin), p.at_start && begin == 0});
          begin = i;
          chars = 0;
        }
      }
    }
    pieces.swap(out);
  }

 private:
  size_t length_;
};

// ---- Decoders ----------------------------------------------------------------------------------

class ByteLevelDecoder final : public Decoder {
 public:
  void decode(std::vector<std::string>& tokens) const override {
    const ByteLevelAlphabet& a = alphabet();
    std::string bytes;
    for (const std::string& t : tokens) {
      // A token with a character outside the alphabet contributes its UTF-8 bytes unchanged.
      std::string mapped;
      bool all = true;
      for (size_t i = 0; i < t.size() && all;) {
        const size_t n = utf8::sequence_length(static_cast<unsigned char>(t[i]));
        const char32_t cp = utf8::decode_at(t, i);
        all = cp < a.char_to_byte.size() && a.char_to_byte[cp] >= 0;
        if (all) mapped += static_cast<char>(a.char_to_byte[cp]);
        i += n;
      }
      bytes += all ? mapped : t;
    }
    tokens.assign(1, utf8::lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      // HF drops every replacement character of the first token unless the scheme is "never".
      const std::string with = (i == 0 && scheme_ != PrependScheme::kNever) ? "" : " ";
      Pattern p;
      p.literal = replacement_;
      tokens[i] = replace_all(tokens[i], p, with);
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    const auto flush = [&] {
      if (pending.empty()) return;
      if (utf8::first_invalid(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') byte = parse_hex(t[3], t[4]);
      if (byte >= 0) {
        pending += static_cast<char>(byte);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static int parse_hex(char a, char b) {
    const int h = hex(a), l = hex(b);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, all);
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<size_t> starts;  // character boundaries
      for (size_t i = 0; i < t.size(); i += utf8::sequence_length(static_cast<unsigned char>(t[i])))
        starts.push_back(i);
      starts.push_back(t.size());
      const size_t n = starts.size() - 1;
      const auto is_content = [&](size_t c) {
        return t.compare(starts[c], starts[c + 1] - starts[c], content_) == 0;
      };
      size_t first = 0, last = n;
      for (size_t c = 0; c < std::min(start_, n) && is_content(c); ++c) first = c + 1;
      for (size_t k = 0; k < std::min(stop_, n) && is_content(n - k - 1); ++k) last = n - k - 1;
      t = first >= last ? std::string() : t.substr(starts[first], starts[last] - starts[first]);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = replace_all(t, pattern_, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

}  // namespace

std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prefix) {
  return std::make_unique<PrependNormalizer>(std::move(prefix));
}
std::unique_ptr<Normalizer> make_replace_normalizer(Pattern pattern, std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
}
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex);
}
std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(Pattern pattern, SplitBehavior behavior,
                                                       bool invert) {
  return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert);
}
std::unique_ptr<PreTokenizer> make_digits_pre_tokenizer(bool individual_digits) {
  // char::is_numeric is General_Category N; each matching character is its own match.
  Pattern digit;
  digit.regex = std::make_shared<Regex>(R"(\p{N})");
  return std::make_unique<SplitPreTokenizer>(
      std::move(digit), individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
      false);
}
std::unique_ptr<PreTokenizer> make_metaspace_pre_tokenizer(std::string replacement,
                                                           PrependScheme scheme, bool split) {
  return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
}
std::unique_ptr<Normalizer> make_byte_level_normalizer() {
  return std::make_unique<ByteLevelNormalizer>();
}
std::unique_ptr<PreTokenizer> make_whitespace_pre_tokenizer() {
  // tokenizers runs `\w+|[^\w\s]+` with the Rust regex crate, whose \w is Alphabetic, M, Nd, Pc
  // and Join_Control and whose \s is White_Space; PCRE2's \w and \s differ (e.g. \w takes No, \s
  // misses U+0085), so both classes are spelled out. Matches are kept, the rest removed.
  constexpr const char* kWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D})";
  constexpr const char* kSpace =
      R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  Pattern p;
  p.regex = std::make_shared<Regex>(std::string("[") + kWord + "]+|[^" + kWord + kSpace + "]+");
  return std::make_unique<SplitPreTokenizer>(std::move(p), SplitBehavior::kRemoved, true);
}
std::unique_ptr<PreTokenizer> make_whitespace_split_pre_tokenizer() {
  return make_char_split(utf8::is_whitespace, SplitBehavior::kRemoved);
}
std::unique_ptr<PreTokenizer> make_punctuation_pre_tokenizer(SplitBehavior behavior) {
  return make_char_split(utf8::is_punctuation, behavior);
}
std::unique_ptr<PreTokenizer> make_char_delimiter_pre_tokenizer(char32_t delimiter) {
  return make_char_split([delimiter](char32_t c) { return c == delimiter; },
                         SplitBehavior::kRemoved);
}
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() {
  return std::make_unique<BertPreTokenizer>();
}
std::unique_ptr<PreTokenizer> make_fixed_length_pre_tokenizer(size_t length) {
  NPEFF_CHECK(length > 0, "FixedLength pre-tokenizer: length must be at least 1");
  return std::make_unique<FixedLengthPreTokenizer>(length);
}
std::unique_ptr<Decoder> make_byte_level_decoder() {
  return std::make_unique<ByteLevelDecoder>();
}
std::unique_ptr<Decoder> make_metaspace_decoder(std::string replacement, PrependScheme scheme) {
  return std::make_unique<MetaspaceDecoder>(std::move(replacement), scheme);
}
std::unique_ptr<Decoder> make_byte_fallback_decoder() {
  return std::make_unique<ByteFallbackDecoder>();
}
std::unique_ptr<Decoder> make_fuse_decoder() {
  return std::make_unique<FuseDecoder>();
}
std::unique_ptr<Decoder> make_strip_decoder(std::string content, size_t start, size_t stop) {
  return std::make_unique<StripDecoder>(std::move(content), start, stop);
}
std::unique_ptr<Decoder> make_replace_decoder(Pattern pattern, std::string content) {
  return std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content));
}

}  // namespace npeff::tokenizer
