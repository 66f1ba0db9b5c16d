// GGUF (llama.cpp) checkpoints of general.architecture "llama" (Llama, SmolLM2, TinyLlama, ...) and
// "qwen2": hyperparameters from {arch}.* metadata, tensors dequantised to float32, llama.cpp's
// tensor names mapped to HF's, and q/k rows of "llama" returned from llama.cpp's interleaved
// rotary order (convert_hf_to_gguf.py permutes them) to HF's.
#include <ATen/ATen.h>

#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "npeff/io/gguf_dequant.h"
#include "npeff/model/loader.h"

namespace npeff::model {

namespace {
int64_t meta_int(const gguf::File& f, const std::string& key, int64_t fallback = -1) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) {
    NPEFF_CHECK(fallback >= 0, f.path(), ": GGUF metadata has no ", key);
    return fallback;
  }
  return v->as_int64();
}
double meta_double(const gguf::File& f, const std::string& key, double fallback) {
  const gguf::Value* v = f.find(key);
  return v == nullptr ? fallback : v->as_double();
}

// HF name -> llama.cpp name ("blk.N." prefix for layers).
std::string gguf_name(const std::string& hf) {
  static const std::pair<const char*, const char*> kLayer[] = {
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
  };
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  const size_t dot = hf.find('.', prefix.size());
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  const std::string rest = hf.substr(dot + 1);
  for (const auto& [from, to] : kLayer) {
    if (rest == from) return "blk." + layer + "." + to;
  }
  NPEFF_ASSERT(false, "no GGUF name for ", hf);
  return {};
}
}  // namespace

LoadedModel load_gguf_model(const std::string& path, const LoadOptions& options) {
  const gguf::File file = gguf::File::open(path);
  const std::string arch = file.at("general.architecture").as_string();
  NPEFF_CHECK(arch == "llama" || arch == "qwen2", path, ": general.architecture '", arch,
              "' is not supported (llama, qwen2)");
  ModelConfig c;
  c.architecture = arch;
  const std::string a = arch + ".";
  c.hidden_size = meta_int(file, a + "embedding_length");
  c.num_layers = meta_int(file, a + "block_count");
  c.intermediate_size = meta_int(file, a + "feed_forward_length");
  c.num_heads = meta_int(file, a + "attention.head_count");
  c.num_kv_heads = meta_int(file, a + "attention.head_count_kv", c.num_heads);
  NPEFF_CHECK(c.num_heads > 0, path, ": attention.head_count must be positive");
  c.head_dim = meta_int(file, a + "attention.key_length", c.hidden_size / c.num_heads);
  c.max_position_embeddings = meta_int(file, a + "context_length", 2048);
  c.rms_norm_eps = meta_double(file, a + "attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = meta_double(file, a + "rope.freq_base", 10000.0);
  c.attention_bias = arch == "qwen2";
  NPEFF_CHECK(file.find_tensor("rope_freqs.weight") == nullptr, path,
              ": rope_freqs (Llama-3 rope scaling in GGUF) is not supported yet");
  const gguf::TensorInfo& embd = file.tensor("token_embd.weight");
  NPEFF_CHECK(embd.shape.size() == 2, path, ": token_embd.weight must be 2-d");
  c.vocab_size = meta_int(file, a + "vocab_size", embd.shape[1]);
  c.tie_word_embeddings = file.find_tensor("output.weight") == nullptr;
  if (const gguf::Value* v = file.find("tokenizer.ggml.bos_token_id"))
    c.bos_token_id = v->as_int64();
  if (const gguf::Value* v = file.find("tokenizer.ggml.eos_token_id"))
    c.eos_token_id = v->as_int64();
  if (const gguf::Value* v = file.find("tokenizer.ggml.padding_token_id"))
    c.pad_token_id = v->as_int64();
  c.validate(path);

  std::vector<Parameter> params;
  std::map<std::string, int> types;
  for (const auto& [name, shape] : LlamaModel::expected_parameters(c)) {
    const std::string gname = gguf_name(name);
    const gguf::TensorInfo* info = file.find_tensor(gname);
    NPEFF_CHECK(info != nullptr, path, ": missing tensor ", gname, " (", name, ")");
    // GGUF lists dimensions fastest first: ne = [in, out] is HF's [out, in].
    std::vector<int64_t> reversed(info->shape.rbegin(), info->shape.rend());
    NPEFF_CHECK(reversed == shape, path, ": tensor ", gname, " has shape ",
                at::IntArrayRef(reversed), " (HF order), the metadata implies ",
                at::IntArrayRef(shape));
    NPEFF_CHECK(gguf::can_dequantize(info->type), path, ": tensor ", gname, " has type ",
                gguf::tensor_type_name(info->type), ", which npeff cannot dequantise");
    std::vector<float> values = gguf::dequantize_tensor(file, *info);
    at::Tensor t = at::from_blob(values.data(), shape, at::kFloat).clone();
    if (arch == "llama") {
      if (name.find("q_proj") != std::string::npos) t = unpermute_rotary_rows(t, c.num_heads);
      if (name.find("k_proj") != std::string::npos) t = unpermute_rotary_rows(t, c.num_kv_heads);
    }
    params.push_back(Parameter{name, t});
    ++types[gguf::tensor_type_name(info->type)];
  }
  LoadedModel loaded;
  loaded.model = std::make_unique<LlamaModel>(c, std::move(params), path);
  loaded.format = "gguf";
  loaded.path = path;
  for (const auto& [type, n] : types) {
    loaded.details += (loaded.details.empty() ? "" : ", ") + std::to_string(n) + " " + type;
  }
  if (!options.tokenizer_path.empty()) {
    loaded.tokenizer =
        std::make_unique<tokenizer::Tokenizer>(tokenizer::load_tokenizer(options.tokenizer_path));
  } else if (file.find("tokenizer.ggml.model") != nullptr) {
    loaded.tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::load_gguf_tokenizer(path));
  }
  return loaded;
}

}  // namespace npeff::model
