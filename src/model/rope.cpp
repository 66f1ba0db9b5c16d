// Rotary inverse frequencies and attention factors for every RoPE scaling form, as HF's
// modeling_rope_utils.py computes them (_compute_{default,linear_scaling,dynamic_ntk,yarn,
// longrope,llama3}_parameters), in float32 like HF; plus llama.cpp's per-pair frequency factors.
#include <ATen/ATen.h>

#include <cmath>

#include "model/rope.h"
#include "npeff/core/error.h"

namespace npeff::model {

namespace {
at::Tensor exponents(int64_t dim) {  // arange(0, dim, 2, int64).float() / dim
  return at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
}
at::Tensor default_inv_freq(double base, int64_t dim) {
  return 1.0 / at::pow(at::scalar_tensor(base, at::kFloat), exponents(dim));
}
double yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}
at::Tensor per_pair(const std::vector<double>& f, int64_t pairs, const char* what) {
  NPEFF_CHECK(static_cast<int64_t>(f.size()) == pairs, "rope scaling: ", what, " has ", f.size(),
              " entries, the rotary dimension needs ", pairs);
  return at::tensor(f, at::kDouble).to(at::kFloat);
}
}  // namespace

Rotary rotary_frequencies(const ModelConfig& c, const RopeConfig& rope, int64_t seq_len) {
  const int64_t dim = c.rotary_dim();
  double base = rope.theta;
  Rotary out;
  if (!rope.scaling) {
    out.inv_freq = default_inv_freq(base, dim);
    return out;
  }
  const RopeScaling& r = *rope.scaling;
  const int64_t original = r.original_max_position_embeddings > 0
                               ? r.original_max_position_embeddings
                               : c.max_position_embeddings;
  if (r.type == "linear") {
    out.inv_freq = default_inv_freq(base, dim) / r.factor;
  } else if (r.type == "dynamic") {
    // NTK-aware: the base grows once the sequence passes the trained context (HF recomputes
    // when seq_len exceeds it and otherwise keeps the original frequencies).
    if (seq_len > original) {
      const double s = r.factor * static_cast<double>(seq_len) / original - (r.factor - 1);
      base *= std::pow(s, static_cast<double>(dim) / (dim - 2));
    }
    out.inv_freq = default_inv_freq(base, dim);
  } else if (r.type == "llama3") {
    at::Tensor inv_freq = default_inv_freq(base, dim);
    const double old_len = static_cast<double>(original);
    const double low_wavelen = old_len / r.low_freq_factor;
    const double high_wavelen = old_len / r.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / r.factor, inv_freq);
    at::Tensor smooth =
        (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    at::Tensor medium = at::logical_and(wavelen >= high_wavelen, wavelen <= low_wavelen);
    out.inv_freq = at::where(medium, smoothed, scaled).to(at::kFloat);
  } else if (r.type == "yarn") {
    // Without a factor: the ratio of the extended to the trained context (HF 5.x).
    const double factor =
        r.factor > 0 ? r.factor : static_cast<double>(c.max_position_embeddings) / original;
    out.attention_factor =
        r.attention_factor ? *r.attention_factor
        : (r.mscale && r.mscale_all_dim)
            ? yarn_mscale(factor, *r.mscale) / yarn_mscale(factor, *r.mscale_all_dim)
            : yarn_mscale(factor, 1.0);
    const auto correction_dim = [&](double rotations) {
      return (dim * std::log(original / (rotations * 2 * M_PI))) / (2 * std::log(base));
    };
    double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
    if (r.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;
    const at::Tensor pos_freqs = at::pow(at::scalar_tensor(base, at::kFloat), exponents(dim));
    const at::Tensor extrapolation = 1.0 / pos_freqs;
    const at::Tensor interpolation = 1.0 / (factor * pos_freqs);
    const at::Tensor ramp = ((at::arange(dim / 2, at::kFloat) - low) / (high - low)).clamp(0, 1);
    const at::Tensor keep = 1 - ramp;  // weight of the extrapolated (unscaled) frequency
    out.inv_freq = (interpolation * (1 - keep) + extrapolation * keep).to(at::kFloat);
  } else if (r.type == "longrope") {
    // Phi-3: no factor, the ratio of max_position_embeddings to the trained context.
    const double factor =
        r.factor > 0 ? r.factor : static_cast<double>(c.max_position_embeddings) / original;
    out.attention_factor =
        r.attention_factor ? *r.attention_factor
        : factor <= 1      ? 1.0
                      : std::sqrt(1 + std::log(factor) / std::log(static_cast<double>(original)));
    const bool long_context = seq_len > original;
    const at::Tensor ext =
        per_pair(long_context ? r.long_factor : r.short_factor, dim / 2, "long/short_factor");
    out.inv_freq =
        (1.0 / (ext * at::pow(at::scalar_tensor(base, at::kFloat), exponents(dim)))).to(at::kFloat);
  } else if (r.type == "factors") {  // GGUF rope_freqs: divide each pair's frequency
    out.inv_freq = default_inv_freq(base, dim) / per_pair(r.long_factor, dim / 2, "rope_freqs");
    if (r.attention_factor) out.attention_factor = *r.attention_factor;
  } else {
    NPEFF_CHECK(false, "rope scaling type '", r.type, "' is not supported");
  }
  return out;
}

bool rotary_depends_on_length(const RopeConfig& rope) {
  return rope.scaling && (rope.scaling->type == "dynamic" || rope.scaling->type == "longrope");
}

}  // namespace npeff::model
