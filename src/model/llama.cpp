// Llama-family forward pass (see include/npeff/model/llama.h). Follows HF modeling_llama.py:
// RMSNorm in float32, rotate_half rotary embeddings, repeat_kv for grouped-query attention,
// float32 softmax with an additive mask, SwiGLU MLP.
#include "npeff/model/llama.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (no longer via ATen.h in torch 2.11)

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

#include "npeff/core/error.h"

namespace npeff::model {

namespace {
std::string layer_name(int64_t i, const char* rest) {
  return "model.layers." + std::to_string(i) + "." + rest;
}
std::string shape_string(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

at::Tensor rope_inverse_frequencies(const ModelConfig& c) {
  const int64_t d = c.head_dim;
  // HF: 1 / base ** (arange(0, dim, 2, int64).float() / dim), in float32.
  at::Tensor exponents = at::arange(0, d, 2, at::kLong).to(at::kFloat) / static_cast<double>(d);
  at::Tensor inv_freq = 1.0 / at::pow(at::scalar_tensor(c.rope_theta, at::kFloat), exponents);
  if (c.rope_scaling) {  // HF _compute_llama3_parameters
    const RopeScaling& r = *c.rope_scaling;
    const double old_len = static_cast<double>(r.original_max_position_embeddings);
    const double low_wavelen = old_len / r.low_freq_factor;
    const double high_wavelen = old_len / r.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / r.factor, inv_freq);
    at::Tensor smooth =
        (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    at::Tensor medium = at::logical_and(wavelen >= high_wavelen, wavelen <= low_wavelen);
    inv_freq = at::where(medium, smoothed, scaled);
  }
  return inv_freq.to(at::kFloat);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> LlamaModel::expected_parameters(
    const ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    out.push_back({layer_name(i, "self_attn.q_proj.weight"), {q, h}});
    if (c.attention_bias) out.push_back({layer_name(i, "self_attn.q_proj.bias"), {q}});
    out.push_back({layer_name(i, "self_attn.k_proj.weight"), {kv, h}});
    if (c.attention_bias) out.push_back({layer_name(i, "self_attn.k_proj.bias"), {kv}});
    out.push_back({layer_name(i, "self_attn.v_proj.weight"), {kv, h}});
    if (c.attention_bias) out.push_back({layer_name(i, "self_attn.v_proj.bias"), {kv}});
    out.push_back({layer_name(i, "self_attn.o_proj.weight"), {h, q}});
    out.push_back({layer_name(i, "mlp.gate_proj.weight"), {c.intermediate_size, h}});
    out.push_back({layer_name(i, "mlp.up_proj.weight"), {c.intermediate_size, h}});
    out.push_back({layer_name(i, "mlp.down_proj.weight"), {h, c.intermediate_size}});
    out.push_back({layer_name(i, "input_layernorm.weight"), {h}});
    out.push_back({layer_name(i, "post_attention_layernorm.weight"), {h}});
  }
  out.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, h}});
  return out;
}

LlamaModel::LlamaModel(ModelConfig config, std::vector<Parameter> parameters, std::string source)
    : config_(std::move(config)), source_(std::move(source)) {
  config_.validate(source_);
  std::unordered_map<std::string, size_t> given;
  for (size_t i = 0; i < parameters.size(); ++i) {
    NPEFF_CHECK(given.emplace(parameters[i].name, i).second, source_, ": tensor ",
                parameters[i].name, " given twice");
  }
  for (const auto& [name, shape] : expected_parameters(config_)) {
    const auto it = given.find(name);
    NPEFF_CHECK(it != given.end(), source_, ": missing tensor ", name, " (expected shape ",
                shape_string(shape), " for ", config_.summary(), ")");
    at::Tensor t = parameters[it->second].tensor;
    NPEFF_CHECK(t.sizes().vec() == shape, source_, ": tensor ", name, " has shape ",
                shape_string(t.sizes()), ", the config implies ", shape_string(shape));
    NPEFF_CHECK(t.is_floating_point(), source_, ": tensor ", name, " is not floating point");
    parameters_.push_back(Parameter{name, t.contiguous()});
    given.erase(it);
  }
  NPEFF_CHECK(given.empty(), source_, ": unexpected tensor ", given.begin()->first, " for a ",
              config_.summary());
  embed_ = find("model.embed_tokens.weight");
  final_norm_ = find("model.norm.weight");
  lm_head_ = config_.tie_word_embeddings ? embed_ : find("lm_head.weight");
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    Layer l{};
    l.attn_norm = find(layer_name(i, "input_layernorm.weight"));
    l.q = find(layer_name(i, "self_attn.q_proj.weight"));
    l.k = find(layer_name(i, "self_attn.k_proj.weight"));
    l.v = find(layer_name(i, "self_attn.v_proj.weight"));
    l.o = find(layer_name(i, "self_attn.o_proj.weight"));
    l.q_bias = find(layer_name(i, "self_attn.q_proj.bias"));
    l.k_bias = find(layer_name(i, "self_attn.k_proj.bias"));
    l.v_bias = find(layer_name(i, "self_attn.v_proj.bias"));
    l.ffn_norm = find(layer_name(i, "post_attention_layernorm.weight"));
    l.gate = find(layer_name(i, "mlp.gate_proj.weight"));
    l.up = find(layer_name(i, "mlp.up_proj.weight"));
    l.down = find(layer_name(i, "mlp.down_proj.weight"));
    layers_.push_back(l);
  }
  inv_freq_ = rope_inverse_frequencies(config_);
}

int LlamaModel::find(const std::string& name) const {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (parameters_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

void LlamaModel::to(const at::Device& device, at::ScalarType dtype) {
  for (Parameter& p : parameters_) p.tensor = p.tensor.to(device, dtype).contiguous();
  inv_freq_ = inv_freq_.to(device);
}

at::Device LlamaModel::device() const {
  return parameters_.front().tensor.device();
}
at::ScalarType LlamaModel::dtype() const {
  return parameters_.front().tensor.scalar_type();
}

at::Tensor LlamaModel::rms_norm(const at::Tensor& x, int weight, ForwardCapture* capture) const {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor normed =
      (xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + config_.rms_norm_eps))
          .to(x.scalar_type());
  at::Tensor y = p(weight) * normed;
  if (capture && capture->wants(weight)) capture->record(weight, -1, true, normed.detach(), y);
  return y;
}

at::Tensor LlamaModel::linear(const at::Tensor& x, int weight, int bias,
                              ForwardCapture* capture) const {
  at::Tensor y = bias >= 0 ? at::linear(x, p(weight), p(bias)) : at::linear(x, p(weight));
  if (capture && capture->wants(weight)) capture->record(weight, bias, false, x.detach(), y);
  return y;
}

namespace {
at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}
}  // namespace

at::Tensor LlamaModel::attention(const at::Tensor& x, const Layer& l, const Packing& pack,
                                 const at::Tensor& cos, const at::Tensor& sin,
                                 ForwardCapture* capture) const {
  const int64_t N = x.size(0), D = config_.head_dim;
  const int64_t H = config_.num_heads, KV = config_.num_kv_heads;
  at::Tensor q = linear(x, l.q, l.q_bias, capture).view({N, H, D});
  at::Tensor k = linear(x, l.k, l.k_bias, capture).view({N, KV, D});
  at::Tensor v = linear(x, l.v, l.v_bias, capture).view({N, KV, D});
  q = q * cos + rotate_half(q) * sin;  // cos/sin [N, 1, D]
  k = k * cos + rotate_half(k) * sin;
  if (KV != H) {  // HF repeat_kv: query head h reads key/value head h / (H / KV)
    k = k.repeat_interleave(H / KV, 1);
    v = v.repeat_interleave(H / KV, 1);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  // Causal attention over each row's real tokens (float32 softmax, additive mask as HF): all
  // rows at once when they have equal lengths, else row by row, so that padding costs nothing.
  const auto attend = [&](const at::Tensor& qr, const at::Tensor& kr, const at::Tensor& vr) {
    const int64_t L = qr.size(-2);  // qr: [..., H, L, D]
    const at::Tensor causal =
        at::full({L, L}, std::numeric_limits<float>::lowest(), qr.options().dtype(at::kFloat))
            .triu(1);
    const at::Tensor scores = at::matmul(qr, kr.transpose(-2, -1)) * scale;
    const at::Tensor probs = at::softmax(scores.to(at::kFloat) + causal, -1).to(qr.scalar_type());
    return at::matmul(probs, vr);
  };
  at::Tensor out;
  if (pack.layout_mask.defined()) {
    // Explicit layout: attention over the padded [B, T] grid with the layout's mask.
    const int64_t B = pack.batch, T = pack.length;
    const auto heads = [&](const at::Tensor& t) {
      return at::zeros({B * T, t.size(1), D}, t.options())
          .index_copy(0, pack.tokens, t)
          .view({B, T, -1, D})
          .transpose(1, 2);
    };
    const at::Tensor scores = at::matmul(heads(q), heads(k).transpose(-2, -1)) * scale;
    const at::Tensor probs =
        at::softmax(scores.to(at::kFloat) + pack.layout_mask, -1).to(q.scalar_type());
    out = at::matmul(probs, heads(v))
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
  return linear(out, l.o, -1, capture);
}

at::Tensor LlamaModel::Packing::unpack(const at::Tensor& x) const {
  if (!padded) return x;
  return at::zeros({batch * length, x.size(1)}, x.options()).index_copy(0, tokens, x);
}
at::Tensor LlamaModel::Packing::pack(const at::Tensor& x) const {
  return padded ? x.index_select(0, tokens) : x;
}

at::Tensor LlamaModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                               ForwardCapture* capture) const {
  return output_logits(forward_hidden(input_ids, attention_mask, capture), capture);
}

at::Tensor LlamaModel::output_logits(const at::Tensor& hidden, ForwardCapture* capture) const {
  // A tied output head reads the embedding matrix: no separate parameter to capture.
  const at::Tensor logits =
      lm_head_ == embed_ ? at::linear(hidden, p(embed_)) : linear(hidden, lm_head_, -1, capture);
  return logits.to(at::kFloat);
}

at::Tensor LlamaModel::forward_hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask,
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
  // Positions count each row's real tokens from 0 (or come from the layout); rotary angles in
  // float32 as HF computes them.
  at::Tensor row_positions = m.cumsum(1) - 1;
  if (layout != nullptr) {
    NPEFF_CHECK(layout->positions.sizes() == ids.sizes() &&
                    layout->allowed.sizes() == at::IntArrayRef({B, T, T}),
                "forward: a token layout needs positions [B, T] and allowed [B, T, T]");
    row_positions = layout->positions.to(dev, at::kLong);
    const at::Tensor ok =
        at::logical_and(layout->allowed.to(dev, at::kBool), m.to(at::kBool).view({B, 1, T}));
    pack.layout_mask =
        at::zeros({B, 1, T, T}, at::TensorOptions().dtype(at::kFloat).device(dev))
            .masked_fill_(at::logical_not(ok).unsqueeze(1), std::numeric_limits<float>::lowest());
  }
  const at::Tensor positions = pack.pack(row_positions.reshape({-1})).to(at::kFloat);  // [N]
  const at::Tensor freqs = positions.unsqueeze(-1) * inv_freq_.view({1, -1});          // [N, D/2]
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  const at::ScalarType dt = dtype();
  const at::Tensor cos = emb.cos().to(dt).unsqueeze(1), sin = emb.sin().to(dt).unsqueeze(1);
  at::Tensor h = at::embedding(p(embed_), pack.pack(ids.reshape({-1})));
  // With a capture, the autograd graph starts at the first layer that holds a captured
  // parameter: earlier layers run without recording anything.
  size_t first = layers_.size();
  for (size_t i = 0; capture && i < layers_.size() && first == layers_.size(); ++i) {
    const Layer& l = layers_[i];
    for (int w : {l.attn_norm, l.q, l.k, l.v, l.o, l.ffn_norm, l.gate, l.up, l.down}) {
      if (capture->wants(w)) first = i;
    }
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    ForwardCapture* c = i < first ? nullptr : capture;
    std::optional<at::NoGradGuard> frozen;
    if (capture && i < first) frozen.emplace();
    if (capture && i == first) h = h.detach().requires_grad_(true);
    h = h + attention(rms_norm(h, l.attn_norm, c), l, pack, cos, sin, c);
    const at::Tensor x = rms_norm(h, l.ffn_norm, c);
    const at::Tensor act = at::silu(linear(x, l.gate, -1, c)) * linear(x, l.up, -1, c);
    h = h + linear(act, l.down, -1, c);
  }
  if (capture && first == layers_.size()) h = h.detach().requires_grad_(true);
  return pack.unpack(rms_norm(h, final_norm_, capture)).view({B, T, -1});
}

}  // namespace npeff::model
