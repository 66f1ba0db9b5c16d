#include "npeff/model/config.h"

#include <sstream>

#include "model/family.h"
#include "npeff/core/error.h"

namespace npeff::model {

int64_t ModelConfig::rotary_dim() const {
  // HF: int(head_dim * partial_rotary_factor)
  return static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
}

bool ModelConfig::layer_is_sliding(int64_t layer) const {
  if (sliding_window <= 0) return false;
  if (sliding_layers.empty()) return true;
  return layer >= 0 && layer < static_cast<int64_t>(sliding_layers.size()) &&
         sliding_layers[static_cast<size_t>(layer)];
}

void ModelConfig::validate(const std::string& source) const {
  const auto positive = [&](int64_t v, const char* name) {
    NPEFF_CHECK(v > 0, source, ": ", name, " must be positive, found ", v);
  };
  family_of(*this);  // refuses an unknown architecture
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
  if (!learned_positions) {
    NPEFF_CHECK(rotary_dim() % 2 == 0 && rotary_dim() > 0 && rotary_dim() <= head_dim, source,
                ": the rotary dimension (head_dim ", head_dim, " x partial_rotary_factor ",
                partial_rotary_factor, ") must be even and within head_dim");
  }
  NPEFF_CHECK(rms_norm_eps > 0 && rope_theta > 0, source,
              ": the norm epsilon and rope_theta must be positive");
  NPEFF_CHECK(sliding_window >= 0, source, ": sliding_window must be >= 0");
  NPEFF_CHECK(sliding_layers.empty() || static_cast<int64_t>(sliding_layers.size()) == num_layers,
              source, ": layer_types lists ", sliding_layers.size(), " layers, the model has ",
              num_layers);
  if (rope_scaling && rope_scaling->type == "llama3") {
    NPEFF_CHECK(
        rope_scaling->factor > 0 && rope_scaling->high_freq_factor > rope_scaling->low_freq_factor,
        source,
        ": llama3 rope scaling needs factor > 0 and high_freq_factor > "
        "low_freq_factor");
  }
}

int64_t ModelConfig::parameter_count() const {
  int64_t total = 0;
  for (const TensorSpec& t : family_of(*this).tensors(*this)) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    total += n;
  }
  return total;
}

std::string ModelConfig::summary() const {
  std::ostringstream s;
  s << architecture << ": " << num_layers << " layers, hidden " << hidden_size << ", " << num_heads
    << " heads (" << num_kv_heads << " kv), head_dim " << head_dim << ", ffn " << intermediate_size
    << ", vocab " << vocab_size;
  if (learned_positions) {
    s << ", learned positions";
  } else {
    s << ", rope_theta " << rope_theta;
    if (partial_rotary_factor != 1.0) s << " on " << rotary_dim() << " dims";
    if (rope_scaling) s << ", " << rope_scaling->type << " rope scaling";
  }
  if (sliding_window > 0) s << ", sliding window " << sliding_window;
  if (attention_bias || o_bias || mlp_bias) {
    s << ",";
    if (attention_bias) s << " qkv";
    if (o_bias) s << " o";
    if (mlp_bias) s << " mlp";
    s << " biases";
  }
  if (parallel_residual) s << ", parallel residual";
  if (attn_logit_softcap > 0 || final_logit_softcap > 0)
    s << ", soft-caps " << attn_logit_softcap << "/" << final_logit_softcap;
  s << (tie_word_embeddings ? ", tied embeddings" : ", untied output");
  return s.str();
}

}  // namespace npeff::model
