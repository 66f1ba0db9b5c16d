// The tokenization pipeline shared by every format (internal). It follows HF `tokenizers`:
//   added tokens split off -> normalizers -> pre-tokenizers -> model -> post-processor,
// and for decoding: ids -> pieces -> decoders -> concatenation. GGUF and llama2.c loaders build
// the same pipeline with the components that reproduce llama.cpp's and llama2.c's behaviour.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "npeff/tokenizer/tokenizer.h"
#include "tokenizer/model.h"
#include "tokenizer/regex.h"

namespace npeff::tokenizer {

// A pre-tokenized piece; `at_start`: it begins at offset 0 of the original text (Metaspace's
// prepend_scheme "first" depends on it).
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Sets `start_moved` when it removed the text's first character (Strip, a filter), so that the
  // first character left comes from later in the original text: HF tracks that through its
  // alignments, and Metaspace's prepend_scheme "first" no longer prepends then.
  virtual void normalize(std::string& text, bool& start_moved) const = 0;
  void normalize(std::string& text) const {
    bool moved = false;
    normalize(text, moved);
  }
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void split(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode(std::vector<std::string>& tokens) const = 0;
};

// How the matches of a pattern split a piece (HF SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
SplitBehavior parse_split_behavior(std::string_view name);

// Components (components.cpp). A pattern is a literal string or a regex.
struct Pattern {
  std::string literal;
  std::shared_ptr<Regex> regex;  // set: regex pattern
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
};
std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prefix);
std::unique_ptr<Normalizer> make_replace_normalizer(Pattern pattern, std::string content);
std::unique_ptr<Normalizer> make_byte_level_normalizer();
// normalizers.cpp (Unicode data from utf8proc).
enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };
std::unique_ptr<Normalizer> make_unicode_normalizer(UnicodeForm form);
std::unique_ptr<Normalizer> make_lowercase_normalizer();
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right);
std::unique_ptr<Normalizer> make_strip_accents_normalizer();
std::unique_ptr<Normalizer> make_nmt_normalizer();
struct BertNormalizerOptions {
  bool clean_text = true, handle_chinese_chars = true, strip_accents = true, lowercase = true;
};
std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options);

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);
std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(Pattern pattern, SplitBehavior behavior,
                                                       bool invert);
std::unique_ptr<PreTokenizer> make_digits_pre_tokenizer(bool individual_digits);
enum class PrependScheme { kAlways, kFirst, kNever };
std::unique_ptr<PreTokenizer> make_metaspace_pre_tokenizer(std::string replacement,
                                                           PrependScheme scheme, bool split);
std::unique_ptr<PreTokenizer> make_whitespace_pre_tokenizer();
std::unique_ptr<PreTokenizer> make_whitespace_split_pre_tokenizer();
std::unique_ptr<PreTokenizer> make_punctuation_pre_tokenizer(SplitBehavior behavior);
std::unique_ptr<PreTokenizer> make_char_delimiter_pre_tokenizer(char32_t delimiter);
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();
std::unique_ptr<PreTokenizer> make_fixed_length_pre_tokenizer(size_t length);

std::unique_ptr<Decoder> make_byte_level_decoder();
std::unique_ptr<Decoder> make_metaspace_decoder(std::string replacement, PrependScheme scheme);
std::unique_ptr<Decoder> make_byte_fallback_decoder();
std::unique_ptr<Decoder> make_fuse_decoder();
std::unique_ptr<Decoder> make_strip_decoder(std::string content, size_t start, size_t stop);
std::unique_ptr<Decoder> make_replace_decoder(Pattern pattern, std::string content);

// GPT-2's pre-tokenization regex (ByteLevel with use_regex).
extern const char* const kGpt2Pattern;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false;
  bool normalized = false;  // matched in the normalized text rather than the raw text
  std::string match;        // normalized: the normalized content that is matched
  const std::string& pattern() const { return normalized ? match : content; }
};

// Leftmost-longest matching of a set of added tokens in a text.
class AddedTokenMatcher {
 public:
  void build(const std::vector<AddedToken>& tokens, bool normalized, bool include_special);
  bool empty() const { return tokens_.empty(); }
  struct Segment {
    size_t begin, end;
    int32_t id;  // -1: text to tokenize
  };
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  std::vector<const AddedToken*> tokens_;
  std::vector<std::vector<const AddedToken*>> by_first_byte_;  // longest first
};

struct Tokenizer::Impl {
  std::string source_path;
  std::string description;
  std::unique_ptr<Model> model;
  std::vector<AddedToken> added;
  std::vector<std::unique_ptr<Normalizer>> normalizers;
  std::vector<std::unique_ptr<PreTokenizer>> pre_tokenizers;
  std::vector<int32_t> prefix_ids, suffix_ids;  // post-processor, single sequence
  std::vector<std::unique_ptr<Decoder>> decoders;
  bool has_decoder = false;  // HF: without a decoder the pieces are joined with " "
  bool llama2c_decode = false;
  std::optional<int32_t> bos, eos, pad, unk;

  // Built by finalize().
  AddedTokenMatcher raw_all, raw_plain, normalized_all, normalized_plain;
  std::vector<const AddedToken*> added_by_id;
  std::vector<bool> special;
  int64_t vocab_size = 0;

  // Checks ids and builds the matchers; every loader calls it last.
  void finalize();
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const;
  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const;
  const std::string& piece(int32_t id) const;

 private:
  void encode_text(std::string_view text, bool at_start, bool parse_special,
                   std::vector<int32_t>& out) const;
};

}  // namespace npeff::tokenizer
