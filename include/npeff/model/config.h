// Hyperparameters of a Llama-family causal LM (Llama 1-3, SmolLM/SmolLM2, TinyLlama, Mistral
// without sliding window, Qwen2 with q/k/v biases), as Hugging Face's config.json names them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace npeff::model {

// Llama-3 style RoPE frequency scaling (HF rope_scaling {"rope_type": "llama3", ...}).
struct RopeScaling {
  std::string type;  // "llama3" (others are refused at load time)
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture = "llama";  // "llama" or "qwen2" (q/k/v biases)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // grouped-query attention when < num_heads
  int64_t head_dim = 0;      // hidden_size / num_heads unless the config says otherwise
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // biases on q/k/v (Qwen2); o_proj never has one
  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;

  // Throws npeff::Error when sizes are missing, non-positive or inconsistent.
  void validate(const std::string& source) const;
  int64_t parameter_count() const;
  // "llama: 30 layers, hidden 576, 9 heads (3 kv), head_dim 64, ffn 1536, vocab 49152, tied"
  std::string summary() const;
};

}  // namespace npeff::model
