// The Llama block and its close relatives, which differ only by switches:
//   llama   (Llama 1-3.x, SmolLM/SmolLM2, TinyLlama): attention_bias = q/k/v AND o_proj biases
//           (modeling_llama.py: o_proj = Linear(..., bias=attention_bias)), mlp_bias.
//   mistral sliding_window on every layer (null: none).
//   qwen2   q/k/v biases always, no o_proj bias; sliding window only with use_sliding_window,
//           on layers >= max_window_layers.
//   qwen3   q/k RMSNorm per head before rotary; attention_bias as Llama's; sliding as qwen2.
// GGUF: general.architecture llama (q/k rows permuted by convert_hf_to_gguf.py), qwen2, qwen3
// (no permutation: llama.cpp runs them with NeoX-style rotary).
#include <ATen/ATen.h>

#include "model/family.h"
#include "npeff/core/error.h"
#include "npeff/model/loader.h"

namespace npeff::model {
namespace {

void parse_hf(const HfConfig& c, ModelConfig& m, const std::string& type) {
  const std::string act = c.string("hidden_act", "silu");
  c.require(act == "silu", "hidden_act '" + act + "' is not supported for " + type + " (silu)");
  if (type == "qwen2") {
    m.attention_bias = true;
  } else {
    m.attention_bias = c.boolean("attention_bias", false);
    m.o_bias = m.attention_bias;  // Llama/Mistral/Qwen3: one flag for q, k, v and o
  }
  m.mlp_bias = c.boolean("mlp_bias", false);
  if (type == "qwen3") m.qk_norm = QkNorm::kPerHead;
  if (type == "mistral" && c.has("sliding_window")) m.sliding_window = c.integer("sliding_window");
  if ((type == "qwen2" || type == "qwen3") && c.boolean("use_sliding_window", false) &&
      c.has("sliding_window")) {
    m.sliding_window = c.integer("sliding_window");
    const int64_t from = c.integer("max_window_layers", m.num_layers);
    m.sliding_layers.assign(static_cast<size_t>(m.num_layers), false);
    for (int64_t i = from; i < m.num_layers; ++i) m.sliding_layers[static_cast<size_t>(i)] = true;
  }
  // transformers >= 4.53 writes the resolved per-layer pattern.
  if (c.has("layer_types") && m.sliding_window > 0)
    m.sliding_layers = family::sliding_layer_types(c);
}

std::vector<TensorSpec> tensors(const ModelConfig& c) {
  std::vector<TensorSpec> out = family::llama_layout_tensors(c);
  if (!c.mlp_bias) return out;
  std::vector<TensorSpec> with;
  for (TensorSpec& t : out) {
    with.push_back(t);
    const std::string base = t.name.substr(0, t.name.size() - 6);  // drop "weight"
    const std::string gbase = t.gguf_name.substr(0, t.gguf_name.size() - 6);
    if (t.role == Role::kGate || t.role == Role::kUp || t.role == Role::kDown) {
      const Role bias = t.role == Role::kDown ? Role::kDownBias
                        : t.role == Role::kUp ? Role::kUpBias
                                              : Role::kGateBias;
      with.push_back({base + "bias", {t.shape[0]}, bias, t.layer, false, gbase + "bias"});
    }
  }
  return with;
}

at::Tensor from_gguf(const TensorSpec& t, const ModelConfig& c, at::Tensor w) {
  if (c.architecture != "llama") return w;
  if (t.role == Role::kQ || t.role == Role::kQBias) return unpermute_rotary_rows(w, c.num_heads);
  if (t.role == Role::kK || t.role == Role::kKBias) return unpermute_rotary_rows(w, c.num_kv_heads);
  return w;
}

Family make(const std::string& name, std::vector<std::string> hf, const std::string& gguf) {
  Family f;
  f.name = name;
  f.hf_model_types = std::move(hf);
  f.gguf_arch = gguf;
  f.default_params = "model.layers.*,!*norm*";
  f.parse_hf = [name](const HfConfig& c, ModelConfig& m) { parse_hf(c, m, name); };
  f.tensors = tensors;
  if (!gguf.empty()) {
    f.parse_gguf = [name](const GgufConfig& g, ModelConfig& m) {
      m.attention_bias = name == "qwen2" || g.has_tensor("blk.0.attn_q.bias");
      m.o_bias = g.has_tensor("blk.0.attn_output.bias");
      m.mlp_bias = g.has_tensor("blk.0.ffn_down.bias");
      if (name == "qwen3") m.qk_norm = QkNorm::kPerHead;
      if (g.has("attention.sliding_window"))
        m.sliding_window = g.integer("attention.sliding_window");
    };
    f.from_gguf = from_gguf;
  }
  return f;
}

}  // namespace

Family llama_family() {
  return make("llama", {"llama"}, "llama");
}
Family mistral_family() {
  return make("mistral", {"mistral"}, "");
}
Family qwen2_family() {
  return make("qwen2", {"qwen2"}, "qwen2");
}
Family qwen3_family() {
  return make("qwen3", {"qwen3"}, "qwen3");
}

}  // namespace npeff::model
