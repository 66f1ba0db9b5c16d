// GGUF vocabularies (llama.cpp's metadata keys tokenizer.ggml.*): `gpt2` (byte-level BPE with
// merges and the pre-tokenizer named by tokenizer.ggml.pre) and `llama` (SentencePiece pieces
// with scores). Built as the equivalent HF pipelines, reproducing llama.cpp's llama-vocab.cpp.
#include <cstdlib>
#include <map>

#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/utf8.h"

namespace npeff::tokenizer {

namespace {
// llama.cpp's llama_token_type.
enum TokenType : int64_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::optional<int32_t> optional_id(const gguf::File& file, const std::string& key, int64_t n) {
  const gguf::Value* v = file.find(key);
  if (v == nullptr) return std::nullopt;
  const int64_t id = v->as_int64();
  if (id < 0 || id >= n) return std::nullopt;  // llama.cpp treats -1 / out of range as "none"
  return static_cast<int32_t>(id);
}

bool optional_bool(const gguf::File& file, const std::string& key, bool fallback) {
  const gguf::Value* v = file.find(key);
  return v == nullptr ? fallback : v->as_bool();
}

// Byte-level BPE pre-tokenizers by tokenizer.ggml.pre (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*).
// Returns whether merges are ignored for whole-word matches.
bool add_gpt2_pre_tokenizer(const std::string& pre, const std::string& path,
                            Tokenizer::Impl& impl) {
  if (pre == "smollm") {  // \p{N} isolated, then GPT-2's regex: HF Digits(individual) + ByteLevel
    impl.pre_tokenizers.push_back(make_digits_pre_tokenizer(true));
    impl.pre_tokenizers.push_back(make_byte_level_pre_tokenizer(false, true));
    return false;
  }
  // "olmo": llama.cpp's name for the GPT-NeoX-20B tokenizer (Pythia, OLMo 1): GPT-2's regex.
  if (pre == "gpt-2" || pre == "gpt2" || pre == "default" || pre == "olmo") {
    impl.pre_tokenizers.push_back(make_byte_level_pre_tokenizer(false, true));
    return false;
  }
  // "dbrx", "smaug-bpe": cl100k-style tokenizers (OLMo 2's dolma2) with Llama 3's regex.
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "qwen2" ||
      pre == "dbrx" || pre == "smaug-bpe") {
    Pattern p;
    p.regex = std::make_shared<Regex>(pre == "qwen2" ? kQwen2Pattern : kLlama3Pattern);
    impl.pre_tokenizers.push_back(
        make_split_pre_tokenizer(std::move(p), SplitBehavior::kIsolated, false));
    impl.pre_tokenizers.push_back(make_byte_level_pre_tokenizer(false, false));
    return pre != "qwen2";
  }
  NPEFF_FAIL(path, ": tokenizer.ggml.pre '", pre,
             "' is not supported by npeff (supported: smollm, gpt-2, default, olmo, llama3, "
             "llama-bpe, dbrx, smaug-bpe, qwen2)");
}

void add_special_tokens(const std::vector<std::string>& tokens, const std::vector<int64_t>& types,
                        Tokenizer::Impl& impl) {
  for (size_t id = 0; id < types.size(); ++id) {
    if (types[id] == kControl || types[id] == kUserDefined) {
      // Both are matched whole in text; only CONTROL tokens are special (dropped by
      // skip-special decoding): llama.cpp and transformers keep USER_DEFINED text (Gemma's "\n",
      // whitespace runs, HTML tags).
      if (tokens[id].empty() || utf8::first_invalid(tokens[id]) != std::string::npos) continue;
      AddedToken t;
      t.id = static_cast<int32_t>(id);
      t.content = tokens[id];
      t.special = types[id] == kControl;
      impl.added.push_back(std::move(t));
    }
  }
}
}  // namespace

Tokenizer load_gguf_tokenizer(const std::string& path) {
  const gguf::File file = gguf::File::open(path);
  const gguf::Value* model_key = file.find("tokenizer.ggml.model");
  NPEFF_CHECK(model_key != nullptr, path, ": GGUF file has no tokenizer (tokenizer.ggml.model)");
  const std::string model = model_key->as_string();
  const std::vector<std::string>& tokens = file.at("tokenizer.ggml.tokens").as_string_array();
  const int64_t n = static_cast<int64_t>(tokens.size());
  NPEFF_CHECK(n > 0, path, ": tokenizer.ggml.tokens is empty");
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (const gguf::Value* t = file.find("tokenizer.ggml.token_type")) {
    types = t->as_int_array();
    NPEFF_CHECK(types.size() == tokens.size(), path, ": tokenizer.ggml.token_type has ",
                types.size(), " entries, expected one per token (", tokens.size(), ")");
  }

  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->source_path = path;
  impl->bos = optional_id(file, "tokenizer.ggml.bos_token_id", n);
  impl->eos = optional_id(file, "tokenizer.ggml.eos_token_id", n);
  impl->pad = optional_id(file, "tokenizer.ggml.padding_token_id", n);
  impl->unk = optional_id(file, "tokenizer.ggml.unknown_token_id", n);
  bool add_bos = false;
  bool add_eos = optional_bool(file, "tokenizer.ggml.add_eos_token", false);

  if (model == "gpt2") {
    for (size_t id = 0; id < tokens.size(); ++id) {
      utf8::check_valid(tokens[id], path + ": token " + std::to_string(id));
    }
    const std::vector<std::string>& merge_lines =
        file.at("tokenizer.ggml.merges").as_string_array();
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(merge_lines.size());
    for (size_t i = 0; i < merge_lines.size(); ++i) {
      const std::string& line = merge_lines[i];
      const size_t space = line.size() > 1 ? line.find(' ', 1) : std::string::npos;
      NPEFF_CHECK(space != std::string::npos, path, ": tokenizer.ggml.merges[", i, "] '", line,
                  "' is not two tokens separated by a space");
      merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    }
    const gguf::Value* pre = file.find("tokenizer.ggml.pre");
    const bool ignore_merges =
        add_gpt2_pre_tokenizer(pre ? pre->as_string() : "default", path, *impl);
    std::vector<std::pair<std::string, int64_t>> entries;
    entries.reserve(tokens.size());
    for (size_t id = 0; id < tokens.size(); ++id) entries.emplace_back(tokens[id], id);
    BpeModel::Options options;
    options.ignore_merges = ignore_merges;
    impl->model =
        std::make_unique<BpeModel>(std::move(entries), merges, options, path + ": tokenizer.ggml");
    add_special_tokens(tokens, types, *impl);
    impl->decoders.push_back(make_byte_level_decoder());
    impl->has_decoder = true;
    add_bos = optional_bool(file, "tokenizer.ggml.add_bos_token", false);
  } else if (model == "llama") {
    std::vector<float> scores = file.at("tokenizer.ggml.scores").as_float_array();
    NPEFF_CHECK(scores.size() == tokens.size(), path, ": tokenizer.ggml.scores has ", scores.size(),
                " entries, expected ", tokens.size());
    std::array<int32_t, 256> byte_ids{};
    byte_ids.fill(-1);
    std::vector<bool> normal(tokens.size());
    for (size_t id = 0; id < tokens.size(); ++id) {
      normal[id] = types[id] == kNormal;
      if (types[id] == kUnknown && !impl->unk) impl->unk = static_cast<int32_t>(id);
      const std::string& p = tokens[id];
      if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') {
        char* end = nullptr;
        const std::string hex = p.substr(3, 2);
        const long b = std::strtol(hex.c_str(), &end, 16);
        if (end == hex.c_str() + 2 && b >= 0 && b < 256 && byte_ids[b] < 0) {
          byte_ids[b] = static_cast<int32_t>(id);
        }
      }
    }
    impl->model = std::make_unique<ScoreModel>(tokens, std::move(scores), byte_ids,
                                               impl->unk.value_or(-1), std::move(normal));
    add_special_tokens(tokens, types, *impl);
    const bool space_prefix = optional_bool(file, "tokenizer.ggml.add_space_prefix", true);
    if (space_prefix) impl->normalizers.push_back(make_prepend_normalizer("\xE2\x96\x81"));
    Pattern space;
    space.literal = " ";
    impl->normalizers.push_back(make_replace_normalizer(space, "\xE2\x96\x81"));
    Pattern marker;
    marker.literal = "\xE2\x96\x81";
    impl->decoders.push_back(make_replace_decoder(marker, " "));
    impl->decoders.push_back(make_byte_fallback_decoder());
    impl->decoders.push_back(make_fuse_decoder());
    if (space_prefix) impl->decoders.push_back(make_strip_decoder(" ", 1, 0));
    impl->has_decoder = true;
    add_bos = optional_bool(file, "tokenizer.ggml.add_bos_token", true);
  } else {
    NPEFF_FAIL(path, ": tokenizer.ggml.model '", model,
               "' is not supported by npeff (supported: gpt2, llama)");
  }
  if (add_bos) {
    NPEFF_CHECK(impl->bos.has_value(), path, ": add_bos_token is set but there is no bos_token_id");
    impl->prefix_ids.push_back(*impl->bos);
  }
  if (add_eos) {
    NPEFF_CHECK(impl->eos.has_value(), path, ": add_eos_token is set but there is no eos_token_id");
    impl->suffix_ids.push_back(*impl->eos);
  }
  impl->finalize();
  impl->description = "GGUF " + model + " vocabulary: " + std::to_string(n) + " tokens, " +
                      std::to_string(impl->added.size()) + " special";
  return Tokenizer(std::move(impl));
}

}  // namespace npeff::tokenizer
