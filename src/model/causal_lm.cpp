// The causal LM runner (include/npeff/model/causal_lm.h). Follows HF's modeling_*.py of each
// family: norms in float32, rotate_half rotary embeddings on the first rotary_dim dims,
// repeat_kv for grouped-query attention, float32 softmax with an additive mask (causal, sliding
// window), optional soft-capping. What a family changes is a ModelConfig switch; which tensor
// plays which part comes from its family file (src/model/families/).
#include "npeff/model/causal_lm.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (no longer via ATen.h in torch 2.11)

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

#include "model/family.h"
#include "model/rope.h"
#include "npeff/core/error.h"

namespace npeff::model {

namespace {
std::string shape_string(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
constexpr float kMasked = std::numeric_limits<float>::lowest();
int R(Role r) {
  return static_cast<int>(r);
}
at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}
}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> CausalLM::expected_parameters(
    const ModelConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const TensorSpec& t : family_of(c).tensors(c)) out.emplace_back(t.name, t.shape);
  return out;
}

CausalLM::CausalLM(ModelConfig config, std::vector<Parameter> parameters, std::string source)
    : config_(std::move(config)), source_(std::move(source)) {
  config_.validate(source_);
  std::unordered_map<std::string, size_t> given;
  for (size_t i = 0; i < parameters.size(); ++i) {
    NPEFF_CHECK(given.emplace(parameters[i].name, i).second, source_, ": tensor ",
                parameters[i].name, " given twice");
  }
  layers_.assign(static_cast<size_t>(config_.num_layers), Slots(kRoleCount, -1));
  global_.assign(kRoleCount, -1);
  for (const TensorSpec& spec : family_of(config_).tensors(config_)) {
    const auto it = given.find(spec.name);
    NPEFF_CHECK(it != given.end(), source_, ": missing tensor ", spec.name, " (expected shape ",
                shape_string(spec.shape), " for ", config_.summary(), ")");
    at::Tensor t = parameters[it->second].tensor;
    NPEFF_CHECK(t.sizes().vec() == spec.shape, source_, ": tensor ", spec.name, " has shape ",
                shape_string(t.sizes()), ", the config implies ", shape_string(spec.shape));
    NPEFF_CHECK(t.is_floating_point(), source_, ": tensor ", spec.name, " is not floating point");
    (spec.layer < 0 ? global_ : layers_[static_cast<size_t>(spec.layer)])[R(spec.role)] =
        static_cast<int>(parameters_.size());
    parameters_.push_back(Parameter{spec.name, t.contiguous()});
    given.erase(it);
  }
  NPEFF_CHECK(given.empty(), source_, ": unexpected tensor ", given.begin()->first, " for a ",
              config_.summary());
  for (int which = 0; which < 2 && !config_.learned_positions; ++which) {
    if (which == 1 && !config_.rope_local) break;
    const RopeConfig rope = rope_config(which);
    if (rotary_depends_on_length(rope)) continue;
    const Rotary r = rotary_frequencies(config_, rope, 0);
    inv_freq_[which] = r.inv_freq;
    rotary_factor_[which] = r.attention_factor;
  }
  embed_ = global_[R(Role::kEmbed)];
  lm_head_ = config_.tie_word_embeddings ? embed_ : global_[R(Role::kLmHead)];
}

int CausalLM::slot(int64_t layer, int role) const {
  return (layer < 0 ? global_ : layers_[static_cast<size_t>(layer)])[role];
}

std::string CausalLM::default_params() const {
  return family_of(config_).default_params;
}

bool CausalLM::is_embedding(int index) const {
  return index == embed_ || index == global_[R(Role::kPosEmbed)];
}

int CausalLM::find(const std::string& name) const {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (parameters_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

void CausalLM::to(const at::Device& device, at::ScalarType dtype) {
  for (Parameter& p : parameters_) p.tensor = p.tensor.to(device, dtype).contiguous();
  for (at::Tensor& f : inv_freq_)
    if (f.defined()) f = f.to(device);  // stays float32
}

at::Device CausalLM::device() const {
  return parameters_.front().tensor.device();
}
at::ScalarType CausalLM::dtype() const {
  return parameters_.front().tensor.scalar_type();
}

at::Tensor CausalLM::norm(const at::Tensor& x, int weight, int bias,
                          ForwardCapture* capture) const {
  const at::Tensor xf = x.to(at::kFloat);
  const double eps = config_.rms_norm_eps;
  at::Tensor normed, y;
  if (config_.norm == NormKind::kLayerNorm) {
    const at::Tensor mean = xf.mean(-1, /*keepdim=*/true);
    const at::Tensor centred = xf - mean;
    normed = (centred * at::rsqrt(centred.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
    y = bias >= 0 ? at::addcmul(p(bias), p(weight), normed) : p(weight) * normed;
  } else if (config_.norm_unit_offset) {
    // Gemma: float32 throughout, (1 + w), then back to the input dtype.
    const at::Tensor nf = xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps);
    normed = nf.to(x.scalar_type());
    y = (nf * (1 + p(weight).to(at::kFloat))).to(x.scalar_type());
  } else {
    normed = (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
    y = p(weight) * normed;
  }
  if (capture && capture->wants(weight)) capture->record(weight, bias, true, normed.detach(), y);
  return y;
}

at::Tensor CausalLM::linear(const at::Tensor& x, int weight, int bias,
                            ForwardCapture* capture) const {
  at::Tensor y = bias >= 0 ? at::linear(x, p(weight), p(bias)) : at::linear(x, p(weight));
  if (capture && capture->wants(weight)) capture->record(weight, bias, false, x.detach(), y);
  return y;
}

RopeConfig CausalLM::rope_config(int which) const {
  return which == 1 ? *config_.rope_local : RopeConfig{config_.rope_theta, config_.rope_scaling};
}

CausalLM::RotaryAngles CausalLM::rotary_angles(const at::Tensor& positions, bool local,
                                               int64_t seq_len) const {
  RotaryAngles a;
  if (config_.learned_positions) return a;
  const int which = local && config_.rope_local ? 1 : 0;
  Rotary r{inv_freq_[which], rotary_factor_[which]};
  if (!r.inv_freq.defined()) r = rotary_frequencies(config_, rope_config(which), seq_len);
  const at::Tensor freqs =
      positions.unsqueeze(-1) * r.inv_freq.to(positions.device()).view({1, -1});  // [N, rd/2]
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos(), sin = emb.sin();
  if (r.attention_factor != 1.0) {
    cos = cos * r.attention_factor;
    sin = sin * r.attention_factor;
  }
  a.cos = cos.to(dtype()).unsqueeze(1);
  a.sin = sin.to(dtype()).unsqueeze(1);
  return a;
}

at::Tensor CausalLM::attention(const at::Tensor& x, int64_t layer, const Packing& pack,
                               const RotaryAngles& rotary, ForwardCapture* capture) const {
  const auto s = [&](Role r) { return slot(layer, R(r)); };
  const int64_t N = x.size(0), D = config_.head_dim;
  const int64_t H = config_.num_heads, KV = config_.num_kv_heads;
  at::Tensor q, k, v;
  if (config_.qkv == QkvLayout::kSeparate) {
    q = linear(x, s(Role::kQ), s(Role::kQBias), capture);
    k = linear(x, s(Role::kK), s(Role::kKBias), capture);
    v = linear(x, s(Role::kV), s(Role::kVBias), capture);
  } else {
    const at::Tensor qkv = linear(x, s(Role::kQkv), s(Role::kQkvBias), capture);
    if (config_.qkv == QkvLayout::kFused) {
      const auto parts = qkv.split_with_sizes({H * D, KV * D, KV * D}, 1);
      q = parts[0], k = parts[1], v = parts[2];
    } else {  // per head [q_h; k_h; v_h]
      const at::Tensor heads = qkv.view({N, H, 3 * D});
      q = heads.narrow(2, 0, D).reshape({N, H * D});
      k = heads.narrow(2, D, D).reshape({N, H * D});
      v = heads.narrow(2, 2 * D, D).reshape({N, H * D});
    }
  }
  if (config_.qk_norm == QkNorm::kWhole) {
    q = norm(q, s(Role::kQNorm), -1, capture);
    k = norm(k, s(Role::kKNorm), -1, capture);
  }
  q = q.view({N, H, D});
  k = k.view({N, KV, D});
  v = v.reshape({N, KV, D});
  if (config_.qk_norm == QkNorm::kPerHead) {
    q = norm(q, s(Role::kQNorm), -1, capture);
    k = norm(k, s(Role::kKNorm), -1, capture);
  }
  if (rotary.cos.defined()) {
    const int64_t rd = rotary.cos.size(-1);
    const auto rotate = [&](const at::Tensor& t) {
      if (rd == D) return t * rotary.cos + rotate_half(t) * rotary.sin;
      const at::Tensor r = t.narrow(-1, 0, rd);
      return at::cat({r * rotary.cos + rotate_half(r) * rotary.sin, t.narrow(-1, rd, D - rd)}, -1);
    };
    q = rotate(q);
    k = rotate(k);
  }
  if (KV != H) {  // HF repeat_kv: query head h reads key/value head h / (H / KV)
    k = k.repeat_interleave(H / KV, 1);
    v = v.repeat_interleave(H / KV, 1);
  }
  const double scale = config_.attention_scale.value_or(1.0 / std::sqrt(static_cast<double>(D)));
  const double cap = config_.attn_logit_softcap;
  const bool sliding = config_.layer_is_sliding(layer);
  const int64_t window = config_.sliding_window;
  // Scores in float32 (soft-capped), plus the additive mask, softmax, back to the compute dtype.
  const auto probs = [&](const at::Tensor& qr, const at::Tensor& kr, const at::Tensor& mask) {
    at::Tensor scores = (at::matmul(qr, kr.transpose(-2, -1)) * scale).to(at::kFloat);
    if (cap > 0) scores = at::tanh(scores / cap) * cap;
    return at::softmax(scores + mask, -1).to(qr.scalar_type());
  };
  // Causal (and sliding-window) attention over each row's real tokens: all rows at once when
  // they have equal lengths, else row by row, so that padding costs nothing.
  const auto attend = [&](const at::Tensor& qr, const at::Tensor& kr, const at::Tensor& vr) {
    const int64_t L = qr.size(-2);  // qr: [..., H, L, D]
    at::Tensor mask = at::full({L, L}, kMasked, qr.options().dtype(at::kFloat)).triu(1);
    if (sliding && window < L) mask = mask + at::full_like(mask, kMasked).tril(-window);
    return at::matmul(probs(qr, kr, mask.clamp_min(kMasked)), vr);
  };
  at::Tensor out;
  if (pack.layout_mask.defined()) {
    // Explicit layout: attention over the padded [B, T] grid with the layout's mask; a sliding
    // window counts positions (as the unshared sequence would have them).
    const int64_t B = pack.batch, T = pack.length;
    const auto heads = [&](const at::Tensor& t) {
      return at::zeros({B * T, t.size(1), D}, t.options())
          .index_copy(0, pack.tokens, t)
          .view({B, T, -1, D})
          .transpose(1, 2);
    };
    at::Tensor mask = pack.layout_mask;
    if (sliding) {
      const at::Tensor pos = pack.layout_positions;
      const at::Tensor far = (pos.unsqueeze(2) - pos.unsqueeze(1)) >= window;  // [B, T, T]
      mask = mask.masked_fill(far.unsqueeze(1), kMasked);
    }
    out = at::matmul(probs(heads(q), heads(k), mask), heads(v))
              .transpose(1, 2)
              .reshape({B * T, H * D})
              .index_select(0, pack.tokens);
  } else if (pack.equal_lengths) {
    const int64_t B = pack.batch, L = N / std::max<int64_t>(B, 1);
    const auto heads = [&](const at::Tensor& t) { return t.view({B, L, H, D}).transpose(1, 2); };
    out = attend(heads(q), heads(k), heads(v)).transpose(1, 2).reshape({N, H * D});
  } else {
    // split_with_sizes: one backward node for all rows (narrow would allocate a full-size
    // gradient per row).
    std::vector<int64_t> sizes;
    for (int64_t len : pack.lengths) {
      if (len > 0) sizes.push_back(len);
    }
    const auto qs = q.split_with_sizes(sizes, 0), ks = k.split_with_sizes(sizes, 0),
               vs = v.split_with_sizes(sizes, 0);
    std::vector<at::Tensor> rows;
    for (size_t r = 0; r < sizes.size(); ++r) {
      rows.push_back(attend(qs[r].transpose(0, 1), ks[r].transpose(0, 1), vs[r].transpose(0, 1))
                         .transpose(0, 1)
                         .reshape({sizes[r], H * D}));
    }
    out = at::cat(rows, 0);
  }
  return linear(out, s(Role::kO), s(Role::kOBias), capture);
}

at::Tensor CausalLM::mlp(const at::Tensor& x, int64_t layer, ForwardCapture* capture) const {
  const auto s = [&](Role r) { return slot(layer, R(r)); };
  const auto act = [&](const at::Tensor& t) {
    switch (config_.activation) {
      case Activation::kGeluTanh:
        return at::gelu(t, "tanh");
      case Activation::kGelu:
        return at::gelu(t);
      default:
        return at::silu(t);
    }
  };
  at::Tensor hidden;
  if (!config_.gated_mlp) {
    hidden = act(linear(x, s(Role::kUp), s(Role::kUpBias), capture));
  } else if (config_.fused_gate_up) {
    const auto gate_up = linear(x, s(Role::kGateUp), -1, capture).chunk(2, -1);
    hidden = act(gate_up[0]) * gate_up[1];
  } else {
    hidden = act(linear(x, s(Role::kGate), s(Role::kGateBias), capture)) *
             linear(x, s(Role::kUp), s(Role::kUpBias), capture);
  }
  return linear(hidden, s(Role::kDown), s(Role::kDownBias), capture);
}

at::Tensor CausalLM::Packing::unpack(const at::Tensor& x) const {
  if (!padded) return x;
  return at::zeros({batch * length, x.size(1)}, x.options()).index_copy(0, tokens, x);
}
at::Tensor CausalLM::Packing::pack(const at::Tensor& x) const {
  return padded ? x.index_select(0, tokens) : x;
}

at::Tensor CausalLM::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                             ForwardCapture* capture) const {
  return output_logits(forward_hidden(input_ids, attention_mask, capture), capture);
}

at::Tensor CausalLM::output_logits(const at::Tensor& hidden, ForwardCapture* capture) const {
  // A tied output head reads the embedding matrix: no separate parameter to capture.
  at::Tensor logits =
      lm_head_ == embed_ ? at::linear(hidden, p(embed_)) : linear(hidden, lm_head_, -1, capture);
  logits = logits.to(at::kFloat);
  const double cap = config_.final_logit_softcap;
  return cap > 0 ? at::tanh(logits / cap) * cap : logits;
}

at::Tensor CausalLM::forward_hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                    ForwardCapture* capture, const TokenLayout* layout) const {
  NPEFF_CHECK(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(),
              "forward: input_ids and attention_mask must both be [batch, length], found ",
              shape_string(input_ids.sizes()), " and ", shape_string(attention_mask.sizes()));
  const at::Device dev = device();
  const at::Tensor ids = input_ids.to(dev, at::kLong);
  NPEFF_CHECK(ids.numel() == 0 || (ids.min().item<int64_t>() >= 0 &&
                                   ids.max().item<int64_t>() < config_.vocab_size),
              "forward: token ids must lie in [0, ", config_.vocab_size, ")");
  const int64_t B = ids.size(0), T = ids.size(1);
  const at::Tensor m = attention_mask.to(dev, at::kLong);
  // Every per-token op (norms, projections, MLP) runs on the packed real tokens [N, hidden],
  // row by row in position order; captured inputs and outputs are in this packed layout.
  Packing pack;
  pack.batch = B;
  pack.length = T;
  pack.tokens = m.reshape({-1}).nonzero().squeeze(1);
  pack.padded = pack.tokens.size(0) != B * T;
  const at::Tensor lengths = m.sum(1).cpu();
  pack.lengths.assign(lengths.data_ptr<int64_t>(), lengths.data_ptr<int64_t>() + B);
  pack.equal_lengths = std::all_of(pack.lengths.begin(), pack.lengths.end(),
                                   [&](int64_t n) { return n == pack.lengths.front(); });
  // Positions count each row's real tokens from 0 (or come from the layout).
  at::Tensor row_positions = m.cumsum(1) - 1;
  if (layout != nullptr) {
    NPEFF_CHECK(layout->positions.sizes() == ids.sizes() &&
                    layout->allowed.sizes() == at::IntArrayRef({B, T, T}),
                "forward: a token layout needs positions [B, T] and allowed [B, T, T]");
    row_positions = layout->positions.to(dev, at::kLong);
    pack.layout_positions = row_positions;
    const at::Tensor ok =
        at::logical_and(layout->allowed.to(dev, at::kBool), m.to(at::kBool).view({B, 1, T}));
    pack.layout_mask = at::zeros({B, 1, T, T}, at::TensorOptions().dtype(at::kFloat).device(dev))
                           .masked_fill_(at::logical_not(ok).unsqueeze(1), kMasked);
  }
  const at::Tensor positions = pack.pack(row_positions.reshape({-1}));  // int64 [N]
  // The longest sequence: for learned positions (a bound) and length-dependent rope only, so
  // that other forwards need no device-to-host sync.
  const bool needs_length = config_.learned_positions || !inv_freq_[0].defined() ||
                            (config_.rope_local && !inv_freq_[1].defined());
  const int64_t seq_len =
      needs_length && positions.numel() > 0 ? positions.max().item<int64_t>() + 1 : 0;
  // Rotary angles in float32 as HF computes them; Gemma 3's sliding layers have their own.
  const at::Tensor fpos = positions.to(at::kFloat);
  const RotaryAngles global_rotary = rotary_angles(fpos, false, seq_len);
  const RotaryAngles local_rotary =
      config_.rope_local ? rotary_angles(fpos, true, seq_len) : global_rotary;
  at::Tensor h = at::embedding(p(embed_), pack.pack(ids.reshape({-1})));
  if (config_.embedding_multiplier != 1.0)
    h = h * at::scalar_tensor(config_.embedding_multiplier, h.options());
  if (config_.learned_positions) {
    NPEFF_CHECK(seq_len <= config_.max_position_embeddings, "forward: position ", seq_len - 1,
                " is beyond the model's ", config_.max_position_embeddings, " learned positions");
    h = h + at::embedding(p(global_[R(Role::kPosEmbed)]), positions);
  }
  // With a capture, the autograd graph starts at the first layer that holds a captured
  // parameter: earlier layers run without recording anything.
  size_t first = layers_.size();
  for (size_t i = 0; capture && i < layers_.size() && first == layers_.size(); ++i) {
    for (int w : layers_[i]) {
      if (w >= 0 && capture->wants(w)) first = i;
    }
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    const int64_t L = static_cast<int64_t>(i);
    const auto s = [&](Role r) { return slot(L, R(r)); };
    ForwardCapture* c = i < first ? nullptr : capture;
    std::optional<at::NoGradGuard> frozen;
    if (capture && i < first) frozen.emplace();
    if (capture && i == first) h = h.detach().requires_grad_(true);
    const RotaryAngles& rotary = config_.layer_is_sliding(L) ? local_rotary : global_rotary;
    if (config_.parallel_residual) {  // GPT-NeoX: both branches read the same input
      const at::Tensor a =
          attention(norm(h, s(Role::kAttnNorm), s(Role::kAttnNormBias), c), L, pack, rotary, c);
      const at::Tensor f = mlp(norm(h, s(Role::kFfnNorm), s(Role::kFfnNormBias), c), L, c);
      h = h + a + f;
      continue;
    }
    at::Tensor x = config_.pre_norms ? norm(h, s(Role::kAttnNorm), s(Role::kAttnNormBias), c) : h;
    at::Tensor a = attention(x, L, pack, rotary, c);
    if (config_.post_norms) a = norm(a, s(Role::kPostAttnNorm), -1, c);
    h = h + a;
    x = config_.pre_norms ? norm(h, s(Role::kFfnNorm), s(Role::kFfnNormBias), c) : h;
    at::Tensor f = mlp(x, L, c);
    if (config_.post_norms) f = norm(f, s(Role::kPostFfnNorm), -1, c);
    h = h + f;
  }
  if (capture && first == layers_.size()) h = h.detach().requires_grad_(true);
  const at::Tensor out =
      norm(h, global_[R(Role::kFinalNorm)], global_[R(Role::kFinalNormBias)], capture);
  return pack.unpack(out).view({B, T, -1});
}

}  // namespace npeff::model
