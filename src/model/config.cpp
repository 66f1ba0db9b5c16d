#include "npeff/model/config.h"

#include <sstream>

#include "npeff/core/error.h"

namespace npeff::model {

void ModelConfig::validate(const std::string& source) const {
  const auto positive = [&](int64_t v, const char* name) {
    NPEFF_CHECK(v > 0, source, ": ", name, " must be positive, found ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_layers, "num_hidden_layers");
  positive(num_heads, "num_attention_heads");
  positive(num_kv_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  positive(max_position_embeddings, "max_position_embeddings");
  NPEFF_CHECK(num_heads % num_kv_heads == 0, source, ": num_attention_heads (", num_heads,
              ") must be a multiple of num_key_value_heads (", num_kv_heads, ")");
  NPEFF_CHECK(head_dim % 2 == 0, source, ": head_dim ", head_dim, " must be even (rotary pairs)");
  NPEFF_CHECK(rms_norm_eps > 0 && rope_theta > 0, source,
              ": rms_norm_eps and rope_theta must be positive");
  NPEFF_CHECK(architecture == "llama" || architecture == "qwen2", source, ": architecture '",
              architecture, "' is not supported (llama, qwen2)");
  if (rope_scaling) {
    NPEFF_CHECK(rope_scaling->type == "llama3", source, ": rope_scaling type '", rope_scaling->type,
                "' is not supported (llama3)");
    NPEFF_CHECK(rope_scaling->factor > 0 &&
                    rope_scaling->high_freq_factor > rope_scaling->low_freq_factor &&
                    rope_scaling->original_max_position_embeddings > 0,
                source,
                ": rope_scaling needs factor > 0, high_freq_factor > low_freq_factor and "
                "original_max_position_embeddings > 0");
  }
}

int64_t ModelConfig::parameter_count() const {
  const int64_t q = num_heads * head_dim, kv = num_kv_heads * head_dim;
  int64_t per_layer = hidden_size * (q + 2 * kv) + q * hidden_size +
                      3 * hidden_size * intermediate_size + 2 * hidden_size;
  if (attention_bias) per_layer += q + 2 * kv;
  int64_t total = vocab_size * hidden_size + num_layers * per_layer + hidden_size;
  if (!tie_word_embeddings) total += vocab_size * hidden_size;
  return total;
}

std::string ModelConfig::summary() const {
  std::ostringstream s;
  s << architecture << ": " << num_layers << " layers, hidden " << hidden_size << ", " << num_heads
    << " heads (" << num_kv_heads << " kv), head_dim " << head_dim << ", ffn " << intermediate_size
    << ", vocab " << vocab_size << ", rope_theta " << rope_theta
    << (rope_scaling ? ", llama3 rope scaling" : "") << (attention_bias ? ", qkv bias" : "")
    << (tie_word_embeddings ? ", tied embeddings" : ", untied output");
  return s.str();
}

}  // namespace npeff::model
