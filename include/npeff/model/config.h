// Hyperparameters of a decoder-only causal LM of one of the families npeff runs (see
// src/model/families/: Llama 1-3 / SmolLM / Mistral / Qwen2 / Qwen3, Gemma 2 / 3, GPT-2,
// GPT-NeoX / Pythia, Phi-3, OLMo-2), in Hugging Face's config.json vocabulary. One block layout
// with switches: what varies between families is named here, each family file sets it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace npeff::model {

// RoPE frequency scaling, the forms HF's ROPE_INIT_FUNCTIONS compute (rope_scaling /
// rope_parameters "rope_type") and GGUF's {arch}.rope.scaling.* keys carry.
struct RopeScaling {
  // "linear", "dynamic" (NTK), "yarn", "longrope", "llama3".
  std::string type;
  double factor = 0.0;  // 0: absent (yarn and longrope then use the context ratio)
  int64_t original_max_position_embeddings = 0;          // 0: max_position_embeddings
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  std::optional<double> mscale, mscale_all_dim;          // yarn (DeepSeek form)
  bool truncate = true;                                  // yarn
  std::optional<double> attention_factor;                // yarn, longrope: cos/sin multiplier
  std::vector<double> short_factor, long_factor;         // longrope, one per rotary pair
};

struct RopeConfig {
  double theta = 10000.0;
  std::optional<RopeScaling> scaling;
};

enum class NormKind { kRms, kLayerNorm };
enum class Activation { kSilu, kGeluTanh, kGelu };
enum class QkvLayout {
  kSeparate,      // q_proj, k_proj, v_proj
  kFused,         // one projection, rows [q (H*D); k (KV*D); v (KV*D)] (Phi-3, GPT-2 c_attn)
  kFusedPerHead,  // one projection, per head [q_h; k_h; v_h] (GPT-NeoX query_key_value)
};
enum class QkNorm {
  kNone,
  kPerHead,  // RMSNorm over head_dim of every head, before rotary (Qwen3, Gemma 3)
  kWhole,    // RMSNorm over all of q (H*D) and of k (KV*D), before the head split (OLMo-2)
};

struct ModelConfig {
  std::string architecture = "llama";  // family name: llama qwen2 qwen3 mistral gemma2 gemma3 ...
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // grouped-query attention when < num_heads
  int64_t head_dim = 0;      // hidden_size / num_heads unless the config says otherwise
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;  // the epsilon of every norm (RMSNorm or LayerNorm)
  // Rotary embeddings of full-attention layers; sliding-window layers use rope_local when set
  // (Gemma 3: rope_local_base_freq).
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  std::optional<RopeConfig> rope_local;
  double partial_rotary_factor = 1.0;  // rotary on the first head_dim * factor dims (NeoX, Phi)
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // biases on q/k/v
  bool o_bias = false;          // bias on the attention output projection
  bool mlp_bias = false;        // biases on the MLP projections
  bool norm_bias = false;       // LayerNorm biases

  // What varies between families (defaults: Llama).
  NormKind norm = NormKind::kRms;
  bool norm_unit_offset = false;  // Gemma: y = x_hat * (1 + w)
  Activation activation = Activation::kSilu;
  bool gated_mlp = true;       // act(gate(x)) * up(x), else act(up(x)) (GPT-2, NeoX)
  bool fused_gate_up = false;  // Phi-3 gate_up_proj: rows [gate; up]
  QkvLayout qkv = QkvLayout::kSeparate;
  QkNorm qk_norm = QkNorm::kNone;
  bool learned_positions = false;         // GPT-2 wpe instead of rotary
  bool parallel_residual = false;         // NeoX: h + attn(ln1(h)) + mlp(ln2(h))
  bool pre_norms = true;                  // norms before attention and MLP (OLMo-2 has none)
  bool post_norms = false;                // norms after attention and MLP (Gemma 2/3, OLMo-2)
  double embedding_multiplier = 1.0;      // Gemma: sqrt(hidden_size), in the compute dtype
  std::optional<double> attention_scale;  // default 1/sqrt(head_dim); Gemma query_pre_attn_scalar
  double attn_logit_softcap = 0;          // 0: none; else cap * tanh(score / cap) (Gemma 2)
  double final_logit_softcap = 0;         // likewise on the output logits
  int64_t sliding_window = 0;             // 0: none; a key is visible when q - k < window
  std::vector<bool> sliding_layers;       // per layer (empty: every layer when window > 0)

  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;
  // Every id generation stops at: config.json and generation_config.json eos_token_id (an int
  // or a list, transformers' rule), eos_token_id first.
  std::vector<int64_t> eos_token_ids;

  int64_t rotary_dim() const;  // head_dim * partial_rotary_factor, even
  bool layer_is_sliding(int64_t layer) const;

  // Throws npeff::Error when sizes are missing, non-positive or inconsistent.
  void validate(const std::string& source) const;
  int64_t parameter_count() const;
  // "llama: 30 layers, hidden 576, 9 heads (3 kv), head_dim 64, ffn 1536, vocab 49152, tied"
  std::string summary() const;
};

}  // namespace npeff::model
