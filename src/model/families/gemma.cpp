// Gemma 2 and Gemma 3 (text): the Llama tensor layout with
//   - RMSNorm y = x_hat * (1 + w), computed in float32 (modeling_gemma2.py Gemma2RMSNorm);
//   - norms before AND after attention and MLP (input_layernorm, post_attention_layernorm,
//     pre_feedforward_layernorm, post_feedforward_layernorm);
//   - embeddings multiplied by sqrt(hidden_size); GeGLU MLP (gelu_pytorch_tanh); tied head;
//   - attention scale query_pre_attn_scalar^-0.5; Gemma 2 soft-caps attention scores and the
//     final logits (cap * tanh(x / cap));
//   - sliding-window layers (Gemma 2: every other layer, the first sliding; Gemma 3: five of
//     every six) — Gemma 3's with their own rotary base (rope_local_base_freq), its global
//     layers with rope_theta and rope scaling; Gemma 3 q/k RMSNorm per head (also 1 + w).
// GGUF (llama.cpp convert_hf_to_gguf.py Gemma2Model/Gemma3Model): norm weights are stored as
// w + 1, so 1 is subtracted on load; q/k are not permuted; Gemma 3's local rope base (10000) and
// layer pattern (every 6th global) are fixed in llama.cpp rather than stored.
#include <ATen/ATen.h>

#include <cmath>

#include "model/family.h"
#include "npeff/core/error.h"
#include "npeff/io/gguf.h"

namespace npeff::model {
namespace {

void common_switches(ModelConfig& m) {
  m.norm_unit_offset = true;
  m.post_norms = true;
  m.activation = Activation::kGeluTanh;
  m.tie_word_embeddings = true;
  // Gemma multiplies in the compute dtype by sqrt(hidden) rounded to it (fp32 here).
  m.embedding_multiplier = static_cast<float>(std::sqrt(static_cast<double>(m.hidden_size)));
}

void parse_hf(const HfConfig& c, ModelConfig& m, bool gemma3) {
  const std::string act =
      c.string("hidden_activation", c.string("hidden_act", "gelu_pytorch_tanh"));
  c.require(act == "gelu_pytorch_tanh" || act == "gelu_tanh",
            "hidden_activation '" + act + "' is not supported (gelu_pytorch_tanh)");
  common_switches(m);
  m.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
  m.attention_bias = c.boolean("attention_bias", false);
  m.o_bias = m.attention_bias;
  if (c.has("query_pre_attn_scalar"))
    m.attention_scale = 1.0 / std::sqrt(c.number("query_pre_attn_scalar", 1.0));
  m.attn_logit_softcap = c.number("attn_logit_softcapping", 0.0);
  m.final_logit_softcap = c.number("final_logit_softcapping", 0.0);
  m.sliding_window = c.integer("sliding_window", 0);
  m.sliding_layers.assign(static_cast<size_t>(m.num_layers), false);
  if (c.has("layer_types")) {
    m.sliding_layers = family::sliding_layer_types(c);
  } else {
    const int64_t pattern = gemma3 ? c.integer("sliding_window_pattern", 6) : 2;
    for (int64_t i = 0; i < m.num_layers; ++i)
      m.sliding_layers[static_cast<size_t>(i)] = (i + 1) % pattern != 0;
  }
  if (!gemma3) return;
  // transformers' Gemma3Attention stores attn_logit_softcapping but never applies it (only the
  // final-logit cap acts): read as the reference reads it.
  m.attn_logit_softcap = 0;
  m.qk_norm = QkNorm::kPerHead;
  // Rotary: transformers 5 nests rope_parameters by layer type; 4.x has rope_theta +
  // rope_scaling for global layers and rope_local_base_freq for sliding ones.
  const nlohmann::json& j = c.raw();
  RopeConfig local;
  local.theta = c.number("rope_local_base_freq", 10000.0);
  if (j.contains("rope_parameters") && j["rope_parameters"].contains("full_attention")) {
    const nlohmann::json& full = j["rope_parameters"]["full_attention"];
    const nlohmann::json& slide = j["rope_parameters"].value("sliding_attention", full);
    m.rope_theta = HfConfig(full, c.source()).number("rope_theta", 1e6);
    m.rope_scaling = family::parse_rope_scaling(c, full);
    local.theta = HfConfig(slide, c.source()).number("rope_theta", local.theta);
    local.scaling = family::parse_rope_scaling(c, slide);
  }
  m.rope_local = local;
}

at::Tensor from_gguf(const TensorSpec& t, const ModelConfig&, at::Tensor w) {
  switch (t.role) {
    case Role::kAttnNorm:
    case Role::kPostAttnNorm:
    case Role::kFfnNorm:
    case Role::kPostFfnNorm:
    case Role::kFinalNorm:
    case Role::kQNorm:
    case Role::kKNorm:
      return w - 1.0f;  // convert_hf_to_gguf.py stored w + 1
    default:
      return w;
  }
}

Family make(const std::string& name, std::vector<std::string> hf, bool gemma3) {
  Family f;
  f.name = name;
  f.hf_model_types = std::move(hf);
  f.gguf_arch = name;
  f.default_params = "model.layers.*,!*norm*";
  f.parse_hf = [gemma3](const HfConfig& c, ModelConfig& m) { parse_hf(c, m, gemma3); };
  f.tensors = family::llama_layout_tensors;
  f.parse_gguf = [gemma3](const GgufConfig& g, ModelConfig& m) {
    common_switches(m);
    m.tie_word_embeddings = !g.has_tensor("output.weight");
    m.attn_logit_softcap = g.number("attn_logit_softcapping", 0.0);
    m.final_logit_softcap = g.number("final_logit_softcapping", 0.0);
    m.sliding_window = g.integer("attention.sliding_window", 0);
    m.sliding_layers.assign(static_cast<size_t>(m.num_layers), false);
    // llama.cpp: attention.sliding_window_pattern (an int, or a bool per layer) when present,
    // else its fixed pattern (set_swa_pattern: 2 for Gemma 2, 6 for Gemma 3).
    const std::string key = g.arch() + ".attention.sliding_window_pattern";
    const gguf::Value* v = g.file().find(key);
    if (v != nullptr && v->is_array()) {
      const std::vector<bool> swa = v->as_bool_array();
      NPEFF_CHECK(static_cast<int64_t>(swa.size()) == m.num_layers, g.file().path(), ": ", key,
                  " lists ", swa.size(), " layers, the model has ", m.num_layers);
      m.sliding_layers = swa;
    } else {
      const int64_t pattern = v != nullptr ? v->as_int64() : gemma3 ? 6 : 2;
      for (int64_t i = 0; i < m.num_layers; ++i)
        m.sliding_layers[static_cast<size_t>(i)] = pattern > 0 && (i + 1) % pattern != 0;
    }
    // llama.cpp scales queries by 1/sqrt(n_embd / n_head) for the 27B models (46 layers in
    // Gemma 2, 62 in Gemma 3: their query_pre_attn_scalar), else 1/sqrt(head_dim).
    if (m.num_layers == (gemma3 ? 62 : 46))
      m.attention_scale = 1.0 / std::sqrt(static_cast<double>(m.hidden_size / m.num_heads));
    if (gemma3) {
      m.qk_norm = QkNorm::kPerHead;
      // llama.cpp: rope.freq_base_swa, else its default rope_freq_base_train_swa = 10000.
      m.rope_local = RopeConfig{g.number("rope.freq_base_swa", 10000.0), std::nullopt};
    }
  };
  f.from_gguf = from_gguf;
  return f;
}

}  // namespace

Family gemma2_family() {
  return make("gemma2", {"gemma2"}, false);
}
Family gemma3_family() {
  return make("gemma3", {"gemma3_text"}, true);
}

}  // namespace npeff::model
