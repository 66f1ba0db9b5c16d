// Text <-> token ids, exactly as the reference implementations of the formats our users hold:
// Hugging Face `tokenizer.json` (tokenizers' BPE with byte-level or SentencePiece-style layout),
// GGUF vocabularies (llama.cpp: `gpt2` BPE and `llama` SentencePiece models) and llama2.c's
// `tokenizer.bin`. Every component that a file names and npeff does not implement is refused at
// load time with a message naming it: a tokenizer that loads encodes as its reference does
// (tested against fixtures written by HF `tokenizers` and `sentencepiece`, see tests/fixtures).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace npeff::tokenizer {

struct EncodeOptions {
  // Add what the tokenizer's post-processor adds (HF `add_special_tokens`: BOS/EOS templates;
  // GGUF: tokenizer.ggml.add_bos_token / add_eos_token; llama2.c: BOS).
  bool add_special_tokens = true;
  // Match added/special-token strings (e.g. "<|im_start|>") in the text as single tokens, as HF
  // `tokenizers` does by default. false: treat them as plain text (sentencepiece, llama2.c).
  bool parse_special = true;
};

struct DecodeOptions {
  bool skip_special_tokens = false;
};

class Tokenizer {
 public:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // `text` must be valid UTF-8 (npeff::Error otherwise, naming the byte offset).
  // Thread-safe: encode/decode may be called concurrently on one Tokenizer.
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Ids outside the vocabulary are an error. Invalid UTF-8 produced by byte tokens is replaced by
  // U+FFFD as the reference decoders do.
  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& options = {}) const;

  // The vocabulary entry of `id` as stored in the file (e.g. "Ġthe", "▁the", "<0x0A>").
  const std::string& piece(int32_t id) const;
  std::optional<int32_t> find_piece(std::string_view piece) const;
  // One past the largest id (ids in [0, vocab_size) may be unused in HF vocabularies with holes).
  int64_t vocab_size() const;
  bool is_special(int32_t id) const;

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  std::optional<int32_t> unk_id() const;

  // e.g. "tokenizer.json: BPE (byte-level), 49152 tokens, 17 added"
  const std::string& description() const;
  const std::string& source_path() const;

  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// The text of a growing id sequence, handed out piece by piece (streaming generation). push()
// returns what can be printed now: the decoded text past what was already handed out, holding
// back a trailing incomplete UTF-8 sequence or trailing U+FFFD, which the next byte token may
// complete (a character whose bytes arrive in separate byte-fallback tokens, e.g. <0xE2><0x96>
// <0x81>). finish() hands out the rest, invalid bytes included (as U+FFFD). Decoding the whole
// sequence each time is what the reference streamers do (transformers' TextStreamer); it keeps
// the output equal to decode(all ids).
class TextStream {
 public:
  // `prefix`: ids already shown (the prompt); their text is not handed out again.
  TextStream(const Tokenizer& tokenizer, std::vector<int32_t> prefix, DecodeOptions options = {});
  std::string push(int32_t id);
  std::string finish();
  // decode() of every id so far.
  std::string text() const;

 private:
  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  DecodeOptions options_;
  std::size_t handed_out_ = 0;  // bytes of text() already returned (or shown as the prompt)
};

// Detects the format: a directory (containing tokenizer.json), a `tokenizer.json` file, a GGUF
// file (magic "GGUF"), or a llama2.c `tokenizer.bin`. Throws npeff::Error on anything else.
Tokenizer load_tokenizer(const std::string& path);

// The individual loaders (load_tokenizer dispatches to them).
Tokenizer load_hf_tokenizer_json(const std::string& path);
Tokenizer load_hf_tokenizer_json_text(std::string_view json_text, const std::string& name);
Tokenizer load_gguf_tokenizer(const std::string& path);
Tokenizer load_llama2c_tokenizer(const std::string& path, int64_t vocab_size = -1);

}  // namespace npeff::tokenizer
