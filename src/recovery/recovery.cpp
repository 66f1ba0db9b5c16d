#include "npeff/recovery/recovery.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "npeff/core/error.h"
#include "npeff/core/log.h"

namespace npeff::recovery {

at::Tensor orthogonal_rejection(const at::Tensor& H, int64_t component, double threshold,
                                int64_t* rejected) {
  NPEFF_CHECK(H.dim() == 2, "components must be [C, d]");
  const int64_t C = H.size(0);
  NPEFF_CHECK(component >= 0 && component < C, "component ", component, " is out of range [0, ", C,
              ")");
  const at::Tensor Hd = H.to(at::kCPU, at::kDouble);
  at::Tensor h = Hd[component].clone();
  int64_t count = 0;
  for (int64_t i = 0; i < C; ++i) {
    if (i == component) continue;
    const double ni = Hd[i].norm().item<double>();
    if (ni == 0) continue;
    const at::Tensor hi = Hd[i] / ni;
    const double dot = at::dot(h, hi).item<double>();
    const double nh = h.norm().item<double>();
    if (nh > 0 && std::abs(dot) / nh < threshold) {
      h = h - dot * hi;
      ++count;
    }
  }
  if (rejected != nullptr) *rejected = count;
  return h;
}

at::Tensor shrink(const at::Tensor& x, double t) {
  return x.sign() * (x.abs() - t).clamp_min(0);
}

namespace {
// float64 sums of n-long float32 vectors, by chunks of 2^22 entries (32 MiB of float64 at a
// time): a whole float64 copy (which sum(kDouble) makes) would be 8 n bytes, 2.5 GB at
// n = 3.15e8. The partial sums stay on the vector's device; one value comes back.
constexpr int64_t kSumChunk = int64_t{1} << 22;
template <typename Term>
double chunked_sum64(const at::Tensor& x, Term&& term) {
  at::Tensor acc = at::zeros({}, x.options().dtype(at::kDouble));
  for (int64_t i = 0; i < x.numel(); i += kSumChunk) {
    const int64_t len = std::min(kSumChunk, x.numel() - i);
    acc += term(i, len).sum();
  }
  return acc.item<double>();
}
double sum_sq64(const at::Tensor& x) {
  return chunked_sum64(
      x, [&](int64_t i, int64_t len) { return x.narrow(0, i, len).to(at::kDouble).square(); });
}
double norm64(const at::Tensor& x) {
  return std::sqrt(sum_sq64(x));
}
double abs_sum64(const at::Tensor& x) {
  return chunked_sum64(
      x, [&](int64_t i, int64_t len) { return x.narrow(0, i, len).to(at::kDouble).abs(); });
}
double dot64(const at::Tensor& a, const at::Tensor& b) {
  return chunked_sum64(a, [&](int64_t i, int64_t len) {
    return a.narrow(0, i, len).to(at::kDouble) * b.narrow(0, i, len).to(at::kDouble);
  });
}

// Largest eigenvalue of A A^T by power iteration on the d-dimensional side.
double largest_eigenvalue(const LinearMap& forward, const LinearMap& adjoint, int64_t d,
                          const at::TensorOptions& options) {
  at::Tensor v = at::ones({d}, options) / std::sqrt(static_cast<double>(d));
  double lambda = 0;
  for (int it = 0; it < 30; ++it) {
    const at::Tensor w = forward(adjoint(v));
    const double next = norm64(w);
    if (next == 0) return 0;
    v = w / next;
    if (it > 5 && std::abs(next - lambda) <= 1e-4 * next) return next;
    lambda = next;
  }
  return lambda;
}
}  // namespace

FpcResult fpc(const LinearMap& forward, const LinearMap& adjoint, const at::Tensor& h, int64_t n,
              const FpcOptions& o) {
  NPEFF_CHECK(o.mu > 0 && o.beta > 1 && o.gamma > 0 && o.gamma <= 1,
              "FPC needs mu > 0, beta > 1 and 0 < gamma <= 1");
  NPEFF_CHECK(h.dim() == 1 && n > 0, "FPC: h must be a vector and n positive");
  const int64_t d = h.size(0);
  // Every vector lives on h's device (the projection's products run there too).
  const at::Tensor b = h.to(at::kFloat).contiguous();
  const at::TensorOptions opts = b.options();
  FpcResult r;
  const double bnorm = norm64(b);
  at::Tensor u = at::zeros({n}, opts);
  r.u = u;
  if (bnorm == 0) return r;
  // Work in the lambda form F(u) = lambda |u|_1 + 1/2 |A u - h|^2, which for lambda = mu has the
  // paper's minimiser. Steps t = tau / L with L = lambda_max(A^T A) (power iteration, 1% margin)
  // and tau from HYZ eq. 73 (their A has L = 1); shrinkage threshold t * lambda.
  const double L = 1.01 * largest_eigenvalue(forward, adjoint, d, opts);
  NPEFF_CHECK(L > 0, "FPC: the projection maps everything to zero");
  const double tau =
      o.tau > 0
          ? o.tau
          : std::min(1 + 1.665 * (1 - static_cast<double>(d) / static_cast<double>(n)), 1.999);
  const double t = tau / L;
  at::Tensor residual = -b;          // A u - h
  at::Tensor g = adjoint(residual);  // A^T (A u - h)
  const double g_inf = g.abs().max().item<double>();
  if (o.mu >= g_inf) return r;  // u = 0 is optimal
  double lambda = std::max(o.mu, o.gamma * g_inf);
  const auto F = [&](double lam) { return lam * abs_sum64(u) + 0.5 * sum_sq64(residual); };
  const auto refresh = [&] {
    residual = forward(u) - b;
    g = adjoint(residual);
  };
  // Subspace step (after FPC_AS, Wen, Yin, Goldfarb & Zhang 2010): on the support S with signs
  // s fixed, F is smooth, (A_S^T A_S) x = A_S^T h - lambda s; conjugate gradients from u_S.
  // A_S^T A_S ~= I (E[A^T A] = I), so a few iterations suffice where shrinkage steps alone,
  // limited to t ~ 2 d / n, would need thousands when d << n.
  const auto subspace = [&](double lam) {
    const at::Tensor support = u.ne(0);
    const int64_t size = support.sum().item<int64_t>();
    // Only on a support A_S is well conditioned on (|S| well below d); otherwise A_S^T A_S is
    // singular and the shrinkage steps must identify the support first.
    if (size == 0 || size > d / 4) return;
    const at::Tensor sign = u.sign();
    const auto restrict = [&](const at::Tensor& v) { return v * support; };
    at::Tensor grad = restrict(g + lam * sign);  // gradient of F on S
    at::Tensor p = -grad;
    double rr = sum_sq64(grad);
    const double rr0 = rr;
    for (int64_t it = 0; it < o.cg_iterations && rr > 1e-14 * rr0; ++it) {
      const at::Tensor Ap = restrict(adjoint(forward(p)));
      const double curvature = dot64(p, Ap);
      if (!(curvature > 0)) break;
      const double alpha = rr / curvature;
      u = u + alpha * p;
      grad = grad + alpha * Ap;
      const double rr_next = sum_sq64(grad);
      p = -grad + (rr_next / rr) * p;
      rr = rr_next;
    }
    u = u * u.sign().eq(sign);  // entries whose sign flipped leave the support
    refresh();
  };
  const auto shrink_step = [&](double lam) {
    // Entries off the support enter only above max(lam, admit_fraction x their largest
    // correlation): the strongest missing entries, not the noise floor of A^T r, which would
    // swamp the support when d << n. At a fixed point the admission threshold tends to lam.
    const at::Tensor off = u.eq(0);
    const double admit = std::max(lam, o.admit_fraction * (g * off).abs().max().item<double>());
    const at::Tensor threshold =
        at::where(off, at::scalar_tensor(t * admit, opts), at::scalar_tensor(t * lam, opts));
    const at::Tensor v = u - t * g;
    u = v.sign() * (v.abs() - threshold).clamp_min(0);
    refresh();
    ++r.iterations;
  };
  for (;;) {
    const at::Tensor before = u.clone();
    for (int64_t i = 0; i < o.inner_iterations; ++i) shrink_step(lambda);
    if (o.cg_iterations > 0) subspace(lambda);
    r.stage_objective.push_back(F(lambda));
    if (lambda > o.mu) {
      lambda = std::max(o.mu, lambda / o.beta);
      continue;
    }
    r.final_objective.push_back(F(lambda));
    const double change = norm64(u - before) / std::max(1.0, norm64(before));
    if (change < o.xtol || static_cast<int64_t>(r.final_objective.size()) >= o.final_iterations)
      break;
  }
  r.relative_residual = norm64(residual) / bnorm;
  r.u = u;
  log::debug("FPC: ", r.iterations, " shrinkage steps, ", r.stage_objective.size(),
             " stages, relative residual ", r.relative_residual, ", nnz ",
             u.ne(0).sum().item<int64_t>());
  return r;
}

}  // namespace npeff::recovery
