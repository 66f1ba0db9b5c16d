// The Unicode normalizers of HF `tokenizers` (normalizers/unicode.rs, strip.rs, bert.rs and
// NormalizedString::lowercase). Unicode data (normalization forms, case mapping, general
// categories) comes from utf8proc rather than tables of our own, so it stays current with a
// maintained library; tokenizers takes the same data from Rust crates, and the two agree on every
// character that the Unicode version of the older of the two already assigned.
#include <utf8proc.h>

#include <cstdlib>

#include "npeff/core/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/utf8.h"

namespace npeff::tokenizer {

namespace {

utf8proc_int32_t cp32(char32_t c) {
  return static_cast<utf8proc_int32_t>(c);
}

// Rebuilds `text` from its characters: `fn(cp, out)` appends what each character becomes.
// Returns whether the first character became nothing (see Normalizer::normalize).
template <typename Fn>
bool map_chars(std::string& text, Fn fn) {
  std::string out;
  out.reserve(text.size());
  bool first_dropped = false;
  for (size_t i = 0; i < text.size();
       i += utf8::sequence_length(static_cast<unsigned char>(text[i]))) {
    fn(utf8::decode_at(text, i), out);
    if (i == 0) first_dropped = out.empty();
  }
  text.swap(out);
  return first_dropped;
}

void unicode_form(std::string& text, utf8proc_option_t options) {
  if (text.empty()) return;
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &out, options);
  // The text is valid UTF-8 (checked on entry), so only an allocation failure can end here.
  NPEFF_CHECK(n >= 0, "Unicode normalization failed: ", utf8proc_errmsg(n));
  text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
}

void lowercase(std::string& text) {
  map_chars(text, [](char32_t c, std::string& out) {
    // Rust's char::to_lowercase uses the full mapping; U+0130 is the only character whose
    // unconditional full lowercase (SpecialCasing.txt) differs from the simple one utf8proc has.
    if (c == 0x130) {
      out += "i\xCC\x87";
    } else {
      utf8::append(out, static_cast<char32_t>(utf8proc_tolower(cp32(c))));
    }
  });
}

bool is_mark(char32_t c) {
  const utf8proc_category_t cat = utf8proc_category(cp32(c));
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) {
    switch (form) {
      case UnicodeForm::kNFC:
        options_ = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        break;
      case UnicodeForm::kNFD:
        options_ = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
        break;
      case UnicodeForm::kNFKC:
        options_ =
            static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
        break;
      case UnicodeForm::kNFKD:
        options_ =
            static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
        break;
    }
  }
  void normalize(std::string& text, bool&) const override { unicode_form(text, options_); }

 private:
  utf8proc_option_t options_{};
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text, bool&) const override { lowercase(text); }
};

// Strips Unicode White_Space (Rust's char::is_whitespace) from either end.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text, bool& start_moved) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end && utf8::is_whitespace(utf8::decode_at(text, begin)))
        begin += utf8::sequence_length(static_cast<unsigned char>(text[begin]));
    }
    if (right_) {
      size_t i = begin, run = end;  // run: start of the trailing whitespace run
      bool in_run = false;
      while (i < end) {
        const bool ws = utf8::is_whitespace(utf8::decode_at(text, i));
        if (ws && !in_run) run = i;
        in_run = ws;
        i += utf8::sequence_length(static_cast<unsigned char>(text[i]));
      }
      if (in_run) end = run;
    }
    if (begin > 0) start_moved = true;
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

// tokenizers' StripAccents drops every combining mark (General_Category M) without decomposing
// first: it is meant to follow an NFD/NFKD normalizer.
class StripAccentsNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text, bool& start_moved) const override {
    start_moved |= map_chars(text, [](char32_t c, std::string& out) {
      if (!is_mark(c)) utf8::append(out, c);
    });
  }
};

class NmtNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text, bool& start_moved) const override {
    start_moved |= map_chars(text, [](char32_t c, std::string& out) {
      if ((c >= 0x01 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
          c == 0x8F || c == 0x9F)
        return;  // removed control characters
      const bool space = c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0x1680 ||
                         (c >= 0x200B && c <= 0x200F) || c == 0x2028 || c == 0x2029 ||
                         c == 0x2581 || c == 0xFEFF || c == 0xFFFD;
      utf8::append(out, space ? U' ' : c);
    });
  }
};

class BertNormalizer final : public Normalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& o) : o_(o) {}
  void normalize(std::string& text, bool& start_moved) const override {
    if (o_.clean_text) {
      start_moved |= map_chars(text, [](char32_t c, std::string& out) {
        if (c == 0 || c == 0xFFFD || is_control(c)) return;
        utf8::append(out,
                     (c == '\t' || c == '\n' || c == '\r' || utf8::is_whitespace(c)) ? U' ' : c);
      });
    }
    if (o_.handle_chinese_chars) {
      map_chars(text, [](char32_t c, std::string& out) {
        const bool cjk = (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
                         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
                         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
                         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
        if (cjk) out += ' ';
        utf8::append(out, c);
        if (cjk) out += ' ';
      });
    }
    if (o_.strip_accents) {
      unicode_form(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
      start_moved |= map_chars(text, [](char32_t c, std::string& out) {
        if (utf8proc_category(cp32(c)) != UTF8PROC_CATEGORY_MN) utf8::append(out, c);
      });
    }
    if (o_.lowercase) lowercase(text);
  }

 private:
  // BERT's "control": Cc, Cf and Co except tab, newline and CR, which count as whitespace.
  // tokenizers' comment also names Cn, but its category crate leaves unassigned code points out.
  static bool is_control(char32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    switch (utf8proc_category(cp32(c))) {
      case UTF8PROC_CATEGORY_CC:
      case UTF8PROC_CATEGORY_CF:
      case UTF8PROC_CATEGORY_CO:
        return true;
      default:
        return false;
    }
  }
  BertNormalizerOptions o_;
};

}  // namespace

std::unique_ptr<Normalizer> make_unicode_normalizer(UnicodeForm form) {
  return std::make_unique<UnicodeNormalizer>(form);
}
std::unique_ptr<Normalizer> make_lowercase_normalizer() {
  return std::make_unique<LowercaseNormalizer>();
}
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right) {
  return std::make_unique<StripNormalizer>(left, right);
}
std::unique_ptr<Normalizer> make_strip_accents_normalizer() {
  return std::make_unique<StripAccentsNormalizer>();
}
std::unique_ptr<Normalizer> make_nmt_normalizer() {
  return std::make_unique<NmtNormalizer>();
}
std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options) {
  return std::make_unique<BertNormalizer>(options);
}

}  // namespace npeff::tokenizer
