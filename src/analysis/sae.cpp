#include "npeff/analysis/sae.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "npeff/core/error.h"

namespace npeff::analysis {
namespace {

struct Forward {
  at::Tensor centered;  ///< x - b_dec
  at::Tensor active;    ///< [B, k] TopK indices
  at::Tensor z;         ///< [B, C]
  at::Tensor x_hat;     ///< [B, h]
};

Forward forward(const SaeModel& s, const at::Tensor& x) {
  Forward f;
  f.centered = x - s.b_dec;
  const at::Tensor pre = at::addmm(s.b_enc, f.centered, s.w_enc.t());
  auto [values, indices] = pre.topk(s.k, 1, /*largest=*/true, /*sorted=*/true);
  f.active = indices;
  f.z = at::zeros_like(pre).scatter_(1, indices, values.clamp_min(0));
  f.x_hat = at::addmm(s.b_dec, f.z, s.w_dec.t());
  return f;
}

// Removes the component of each row (dim 1) / column (dim 0) of `grad` along the unit rows /
// columns of `w`: the tangent space of the unit sphere at w.
at::Tensor tangent(const at::Tensor& grad, const at::Tensor& w, int64_t dim) {
  return grad - (grad * w).sum(dim, true) * w;
}

at::Tensor unit(const at::Tensor& w, int64_t dim) {
  return w / w.norm(2, {dim}, true).clamp_min(1e-12);
}

struct Adam {
  at::Tensor m, v;
  void step(at::Tensor& p, const at::Tensor& g, double lr, int64_t t) {
    constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    if (!m.defined()) m = at::zeros_like(p), v = at::zeros_like(p);
    m.mul_(b1).add_(g, 1 - b1);
    v.mul_(b2).addcmul_(g, g, 1 - b2);
    const double c1 = 1 - std::pow(b1, static_cast<double>(t));
    const double c2 = 1 - std::pow(b2, static_cast<double>(t));
    p.sub_((m / c1) / ((v / c2).sqrt() + eps) * lr);
  }
};

}  // namespace

at::Tensor normalize_rows(const at::Tensor& x) {
  const at::Tensor n = x.norm(2, {1}, true);
  return x / at::where(n.gt(0), n, at::ones_like(n));
}

double fraction_of_variance_unexplained(const at::Tensor& x, const at::Tensor& x_hat) {
  const at::Tensor xd = x.to(at::kDouble), yd = x_hat.to(at::kDouble);
  const double residual = (xd - yd).pow(2).sum().item<double>();
  const double variance = (xd - xd.mean(0, true)).pow(2).sum().item<double>();
  return variance > 0 ? residual / variance : 0.0;
}

SaeModel init_sae(const at::Tensor& x, std::int64_t latents, std::int64_t k, std::uint64_t seed) {
  const std::int64_t h = x.size(1);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  at::Tensor w = at::empty({latents, h}, at::kFloat);
  float* p = w.data_ptr<float>();
  for (std::int64_t i = 0; i < latents * h; ++i) p[i] = normal(rng);
  SaeModel s;
  s.k = k;
  s.w_enc = unit(w, 1);
  s.w_dec = s.w_enc.t().contiguous();  // Gao et al.: decoder = encoder transpose
  s.b_enc = at::zeros({latents}, at::kFloat);
  s.b_dec = x.to(at::kFloat).mean(0);
  return s;
}

SaeCodes sae_encode(const SaeModel& s, const at::Tensor& x) {
  SaeCodes out;
  const std::int64_t m = x.size(0), chunk = 8192;
  std::vector<at::Tensor> codes, active, recon;
  for (std::int64_t i = 0; i < m; i += chunk) {
    const Forward f = forward(s, x.slice(0, i, std::min(m, i + chunk)).to(at::kFloat));
    codes.push_back(f.z), active.push_back(f.active), recon.push_back(f.x_hat);
  }
  out.codes = at::cat(codes);
  out.active = at::cat(active);
  out.reconstruction = at::cat(recon);
  return out;
}

SaeGradients sae_gradients(const SaeModel& s, const at::Tensor& x) {
  const Forward f = forward(s, x);
  const double B = static_cast<double>(x.size(0));
  const at::Tensor err = f.x_hat - x;
  SaeGradients g;
  g.loss = err.to(at::kDouble).pow(2).sum().item<double>() / B;
  const at::Tensor d_hat = err * (2.0 / B);                  // dL/dx_hat [B, h]
  g.w_dec = at::mm(d_hat.t(), f.z);                          // [h, C]
  const at::Tensor d_z = at::mm(d_hat, s.w_dec);             // [B, C]
  const at::Tensor d_pre = d_z * f.z.gt(0).to(d_z.dtype());  // TopK and ReLU pass only z > 0
  g.w_enc = at::mm(d_pre.t(), f.centered);                   // [C, h]
  g.b_enc = d_pre.sum(0);
  g.b_dec = d_hat.sum(0) - at::mm(d_pre, s.w_enc).sum(0);
  return g;
}

SaeTrainResult train_sae(const at::Tensor& x_in, const SaeOptions& o,
                         const std::function<void(std::int64_t)>& on_step) {
  NPEFF_CHECK(x_in.dim() == 2 && x_in.size(0) > 0, "SAE input must be [m, h] with m > 0, got ",
              x_in.sizes());
  NPEFF_CHECK(o.latents >= 1, "--latents must be >= 1, got ", o.latents);
  NPEFF_CHECK(o.k >= 1 && o.k <= o.latents, "--k must lie in [1, latents = ", o.latents, "], got ",
              o.k);
  NPEFF_CHECK(o.lr > 0 && o.batch_size >= 1 && o.steps >= 0,
              "--lr must be > 0, --batch-size >= 1, --steps >= 0");
  const at::Tensor x = x_in.to(at::kFloat).cpu().contiguous();
  const std::int64_t m = x.size(0), B = std::min(o.batch_size, m);
  SaeTrainResult r;
  r.model = init_sae(x, o.latents, o.k, o.seed);
  SaeModel& s = r.model;
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  std::vector<std::int64_t> order(static_cast<size_t>(m));
  std::iota(order.begin(), order.end(), 0);
  std::int64_t cursor = m;
  Adam a_we, a_be, a_wd, a_bd;
  const auto t0 = std::chrono::steady_clock::now();
  const auto record = [&](std::int64_t step) {
    r.steps.push_back(step);
    r.fvu.push_back(fraction_of_variance_unexplained(x, sae_encode(s, x).reconstruction));
    r.seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  record(0);
  for (std::int64_t step = 1; step <= o.steps; ++step) {
    if (cursor + B > m) {  // a fresh permutation per epoch
      std::shuffle(order.begin(), order.end(), rng);
      cursor = 0;
    }
    const at::Tensor idx = at::from_blob(order.data() + cursor, {B}, at::kLong).clone();
    cursor += B;
    const SaeGradients g = sae_gradients(s, x.index_select(0, idx));
    a_we.step(s.w_enc, tangent(g.w_enc, s.w_enc, 1), o.lr, step);
    a_wd.step(s.w_dec, tangent(g.w_dec, s.w_dec, 0), o.lr, step);
    a_be.step(s.b_enc, g.b_enc, o.lr, step);
    a_bd.step(s.b_dec, g.b_dec, o.lr, step);
    s.w_enc = unit(s.w_enc, 1);
    s.w_dec = unit(s.w_dec, 0);
    if (step % std::max<std::int64_t>(1, o.record_every) == 0 || step == o.steps) record(step);
    if (on_step) on_step(step);
  }
  const SaeCodes c = sae_encode(s, x);
  r.final_fvu = fraction_of_variance_unexplained(x, c.reconstruction);
  r.dead_latents = c.codes.gt(0).any(0).logical_not().sum().item<std::int64_t>();
  return r;
}

}  // namespace npeff::analysis
