// Phi-3 (modeling_phi3.py): the Llama block with one qkv_proj ([q; k; v] rows) and one
// gate_up_proj ([gate; up] rows), partial rotary (partial_rotary_factor), longrope or other rope
// scalings, optional sliding window on every layer.
// GGUF (llama.cpp phi3): attn_qkv and ffn_up hold the fused weights; longrope factors are the
// rope_factors_long/short tensors; no q/k permutation.
#include "model/family.h"
#include "npeff/core/error.h"

namespace npeff::model {
namespace {

void switches(ModelConfig& m) {
  m.qkv = QkvLayout::kFused;
  m.fused_gate_up = true;
}

void parse_hf(const HfConfig& c, ModelConfig& m) {
  switches(m);
  const std::string act = c.string("hidden_act", "silu");
  c.require(act == "silu", "hidden_act '" + act + "' is not supported for phi3 (silu)");
  c.require(!c.boolean("attention_bias", false), "attention_bias is not supported for phi3");
  m.sliding_window = c.integer("sliding_window", 0);
}

}  // namespace

Family phi3_family() {
  Family f;
  f.name = "phi3";
  f.hf_model_types = {"phi3"};
  f.gguf_arch = "phi3";
  f.default_params = "model.layers.*,!*norm*";
  f.parse_hf = parse_hf;
  f.tensors = family::llama_layout_tensors;
  f.parse_gguf = [](const GgufConfig& g, ModelConfig& m) {
    switches(m);
    m.sliding_window = g.integer("attention.sliding_window", 0);
    if (m.rope_scaling && m.rope_scaling->type == "longrope" &&
        m.rope_scaling->original_max_position_embeddings == 0)
      m.rope_scaling->original_max_position_embeddings =
          g.integer("rope.scaling.original_context_length", m.max_position_embeddings);
  };
  return f;
}

}  // namespace npeff::model
