// GPT-NeoX / Pythia (modeling_gpt_neox.py): LayerNorm with bias, one query_key_value projection
// laid out per head ([q_h; k_h; v_h] for each head h), rotary on the first rotary_pct of each
// head, parallel residual h + attn(ln1(h)) + mlp(ln2(h)) (use_parallel_residual; else
// sequential), GELU MLP dense_h_to_4h -> dense_4h_to_h, untied embed_out.
// GGUF (convert_hf_to_gguf.py GPTNeoXModel): query_key_value reordered to [q; k; v] (all heads of
// q first), which is undone on load.
#include "model/family.h"
#include "npeff/core/error.h"
#include "npeff/io/gguf.h"

namespace npeff::model {
namespace {

std::vector<TensorSpec> tensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  std::vector<TensorSpec> out;
  out.push_back({"gpt_neox.embed_in.weight",
                 {c.vocab_size, h},
                 Role::kEmbed,
                 -1,
                 false,
                 "token_embd.weight"});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const family::LayerTensors add(out, "gpt_neox.layers.", i);
    add("input_layernorm.weight", {h}, Role::kAttnNorm, "attn_norm.weight");
    add("input_layernorm.bias", {h}, Role::kAttnNormBias, "attn_norm.bias");
    add("post_attention_layernorm.weight", {h}, Role::kFfnNorm, "ffn_norm.weight");
    add("post_attention_layernorm.bias", {h}, Role::kFfnNormBias, "ffn_norm.bias");
    add("attention.query_key_value.weight", {3 * h, h}, Role::kQkv, "attn_qkv.weight");
    if (c.attention_bias)
      add("attention.query_key_value.bias", {3 * h}, Role::kQkvBias, "attn_qkv.bias");
    add("attention.dense.weight", {h, h}, Role::kO, "attn_output.weight");
    if (c.o_bias) add("attention.dense.bias", {h}, Role::kOBias, "attn_output.bias");
    add("mlp.dense_h_to_4h.weight", {ff, h}, Role::kUp, "ffn_up.weight");
    add("mlp.dense_h_to_4h.bias", {ff}, Role::kUpBias, "ffn_up.bias");
    add("mlp.dense_4h_to_h.weight", {h, ff}, Role::kDown, "ffn_down.weight");
    add("mlp.dense_4h_to_h.bias", {h}, Role::kDownBias, "ffn_down.bias");
  }
  out.push_back(
      {"gpt_neox.final_layer_norm.weight", {h}, Role::kFinalNorm, -1, false, "output_norm.weight"});
  out.push_back(
      {"gpt_neox.final_layer_norm.bias", {h}, Role::kFinalNormBias, -1, false, "output_norm.bias"});
  if (!c.tie_word_embeddings)
    out.push_back(
        {"embed_out.weight", {c.vocab_size, h}, Role::kLmHead, -1, false, "output.weight"});
  return out;
}

void switches(ModelConfig& m) {
  m.norm = NormKind::kLayerNorm;
  m.norm_bias = true;
  m.activation = Activation::kGelu;
  m.gated_mlp = false;
  m.mlp_bias = true;
  m.qkv = QkvLayout::kFusedPerHead;
}

void parse_hf(const HfConfig& c, ModelConfig& m) {
  switches(m);
  m.num_kv_heads = m.num_heads;
  m.head_dim = m.hidden_size / m.num_heads;
  m.rms_norm_eps = c.number("layer_norm_eps", 1e-5);
  m.rope_theta = c.number("rotary_emb_base", m.rope_theta);
  if (c.has("rotary_pct")) m.partial_rotary_factor = c.number("rotary_pct", 1.0);
  m.parallel_residual = c.boolean("use_parallel_residual", true);
  m.attention_bias = m.o_bias = c.boolean("attention_bias", true);
  const std::string act = c.string("hidden_act", "gelu");
  c.require(act == "gelu", "hidden_act '" + act + "' is not supported for gpt_neox (gelu)");
}

// [q; k; v] (heads within each) -> per head [q_h; k_h; v_h].
at::Tensor interleave_heads(const at::Tensor& w, int64_t heads) {
  std::vector<int64_t> shape = {3, heads, w.size(0) / 3 / heads};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(0, 1).reshape(w.sizes()).contiguous();
}

}  // namespace

Family gpt_neox_family() {
  Family f;
  f.name = "gpt_neox";
  f.hf_model_types = {"gpt_neox"};
  f.gguf_arch = "gptneox";
  f.default_params = "gpt_neox.layers.*,!*layernorm*";
  f.parse_hf = parse_hf;
  f.ignored_hf_tensors = {".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq"};
  f.hf_base_prefix = "gpt_neox.";
  f.tensors = tensors;
  f.parse_gguf = [](const GgufConfig& g, ModelConfig& m) {
    switches(m);
    m.parallel_residual = g.file().find("gptneox.use_parallel_residual") == nullptr ||
                          g.file().at("gptneox.use_parallel_residual").as_bool();
    m.attention_bias = g.has_tensor("blk.0.attn_qkv.bias");
    m.o_bias = g.has_tensor("blk.0.attn_output.bias");
  };
  f.from_gguf = [](const TensorSpec& t, const ModelConfig& c, at::Tensor w) {
    return t.role == Role::kQkv || t.role == Role::kQkvBias ? interleave_heads(w, c.num_heads) : w;
  };
  return f;
}

}  // namespace npeff::model
