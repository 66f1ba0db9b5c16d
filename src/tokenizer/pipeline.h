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
  virtual void normalize(std::string& text) const = 0;
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

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);
std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(Pattern pattern, SplitBehavior behavior,
                                                       bool invert);
std::unique_ptr<PreTokenizer> make_digits_pre_tokenizer(bool individual_digits);
enum class PrependScheme { kAlways, kFirst, kNever };
std::unique_ptr<PreTokenizer> make_metaspace_pre_tokenizer(std::string replacement,
                                                           PrependScheme scheme, bool split);

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
