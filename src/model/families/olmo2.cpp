// OLMo-2 (modeling_olmo2.py): the Llama tensors without pre-norms; instead RMSNorm after
// attention and after the MLP (post_attention_layernorm, post_feedforward_layernorm), and q/k
// RMSNorm over the whole projection (H * head_dim, KV * head_dim) before the head split.
// GGUF (llama.cpp olmo2): post_attention_norm, post_ffw_norm, attn_q_norm, attn_k_norm; no q/k
// permutation.
#include "model/family.h"
#include "npeff/core/error.h"

namespace npeff::model {
namespace {

void switches(ModelConfig& m) {
  m.pre_norms = false;
  m.post_norms = true;
  m.qk_norm = QkNorm::kWhole;
}

}  // namespace

Family olmo2_family() {
  Family f;
  f.name = "olmo2";
  f.hf_model_types = {"olmo2"};
  f.gguf_arch = "olmo2";
  f.default_params = "model.layers.*,!*norm*";
  f.parse_hf = [](const HfConfig& c, ModelConfig& m) {
    switches(m);
    const std::string act = c.string("hidden_act", "silu");
    c.require(act == "silu", "hidden_act '" + act + "' is not supported for olmo2 (silu)");
    m.attention_bias = m.o_bias = c.boolean("attention_bias", false);
  };
  f.tensors = family::llama_layout_tensors;
  f.parse_gguf = [](const GgufConfig&, ModelConfig& m) { switches(m); };
  return f;
}

}  // namespace npeff::model
