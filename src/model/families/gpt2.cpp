// GPT-2 (modeling_gpt2.py): learned absolute positions (wpe), LayerNorm with bias before
// attention and MLP, one fused c_attn projection [q; k; v], GELU-tanh ("gelu_new") MLP
// c_fc -> c_proj, biases everywhere, tied output head.
// HF stores its projections as Conv1D weights [in, out]; npeff holds every linear weight as
// [out, in], so they are transposed on load and per-example gradients of c_attn, c_proj and c_fc
// are laid out [out, in] (the transpose of the checkpoint's tensor).
// GGUF (convert_hf_to_gguf.py GPT2Model): the same weights already transposed to [out, in].
#include "model/family.h"
#include "npeff/core/error.h"

namespace npeff::model {
namespace {

std::vector<TensorSpec> tensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  std::vector<TensorSpec> out;
  out.push_back(
      {"transformer.wte.weight", {c.vocab_size, h}, Role::kEmbed, -1, false, "token_embd.weight"});
  out.push_back({"transformer.wpe.weight",
                 {c.max_position_embeddings, h},
                 Role::kPosEmbed,
                 -1,
                 false,
                 "position_embd.weight"});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const family::LayerTensors add(out, "transformer.h.", i);
    add("ln_1.weight", {h}, Role::kAttnNorm, "attn_norm.weight");
    add("ln_1.bias", {h}, Role::kAttnNormBias, "attn_norm.bias");
    add("attn.c_attn.weight", {3 * h, h}, Role::kQkv, "attn_qkv.weight", true);
    add("attn.c_attn.bias", {3 * h}, Role::kQkvBias, "attn_qkv.bias");
    add("attn.c_proj.weight", {h, h}, Role::kO, "attn_output.weight", true);
    add("attn.c_proj.bias", {h}, Role::kOBias, "attn_output.bias");
    add("ln_2.weight", {h}, Role::kFfnNorm, "ffn_norm.weight");
    add("ln_2.bias", {h}, Role::kFfnNormBias, "ffn_norm.bias");
    add("mlp.c_fc.weight", {ff, h}, Role::kUp, "ffn_up.weight", true);
    add("mlp.c_fc.bias", {ff}, Role::kUpBias, "ffn_up.bias");
    add("mlp.c_proj.weight", {h, ff}, Role::kDown, "ffn_down.weight", true);
    add("mlp.c_proj.bias", {h}, Role::kDownBias, "ffn_down.bias");
  }
  out.push_back(
      {"transformer.ln_f.weight", {h}, Role::kFinalNorm, -1, false, "output_norm.weight"});
  out.push_back(
      {"transformer.ln_f.bias", {h}, Role::kFinalNormBias, -1, false, "output_norm.bias"});
  if (!c.tie_word_embeddings)
    out.push_back({"lm_head.weight", {c.vocab_size, h}, Role::kLmHead, -1, false, "output.weight"});
  return out;
}

void switches(ModelConfig& m) {
  m.norm = NormKind::kLayerNorm;
  m.norm_bias = true;
  m.activation = Activation::kGeluTanh;
  m.gated_mlp = false;
  m.qkv = QkvLayout::kFused;
  m.learned_positions = true;
  m.attention_bias = m.o_bias = m.mlp_bias = true;
}

void parse_hf(const HfConfig& c, ModelConfig& m) {
  switches(m);
  m.vocab_size = c.integer("vocab_size");
  m.hidden_size = c.integer("n_embd");
  m.num_layers = c.integer("n_layer");
  m.num_heads = m.num_kv_heads = c.integer("n_head");
  NPEFF_CHECK(m.num_heads > 0, c.source(), ": n_head must be positive");
  m.head_dim = m.hidden_size / m.num_heads;
  m.intermediate_size = c.integer("n_inner", 4 * m.hidden_size);
  m.max_position_embeddings = c.integer("n_positions", 1024);
  m.rms_norm_eps = c.number("layer_norm_epsilon", 1e-5);
  m.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
  const std::string act = c.string("activation_function", "gelu_new");
  c.require(act == "gelu_new" || act == "gelu_pytorch_tanh",
            "activation_function '" + act + "' is not supported (gelu_new)");
  c.require(
      c.boolean("scale_attn_weights", true) && !c.boolean("scale_attn_by_inverse_layer_idx", false),
      "only GPT-2's default attention scaling is supported (scale_attn_weights true, "
      "scale_attn_by_inverse_layer_idx false)");
}

}  // namespace

Family gpt2_family() {
  Family f;
  f.name = "gpt2";
  f.hf_model_types = {"gpt2"};
  f.gguf_arch = "gpt2";
  f.default_params = "transformer.h.*,!*ln_*";
  f.parse_hf = parse_hf;
  f.common_hf_keys = false;
  f.ignored_hf_tensors = {".attn.bias", ".attn.masked_bias"};  // causal-mask buffers
  f.hf_base_prefix = "transformer.";
  f.tensors = tensors;
  f.parse_gguf = [](const GgufConfig&, ModelConfig& m) {
    switches(m);
    m.num_kv_heads = m.num_heads;
    if (m.intermediate_size == 0) m.intermediate_size = 4 * m.hidden_size;
  };
  return f;
}

}  // namespace npeff::model
