// From projected pseudo-Fisher vectors back to parameter space (paper Sections 2.2.1, 3.2,
// Appendix G): orthogonal rejection against the other components in projected space, then
// compressed sensing: a sparse u with A u ~= h, by the fixed-point continuation (FPC) method of
// Hale, Yin & Zhang (2007) for  min ||u||_1 + 1/(2 mu) ||A u - h||^2, using only products with
// A and A^T (never a materialised matrix).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace npeff::recovery {

// Section 3.2: h = H[component]; for every other component i in order, with h_i its unit vector,
// if |h . h_i| / ||h|| < threshold then h <- h - (h . h_i) h_i (h as updated so far). Returns the
// rejected h (float64 [d]); `rejected` (optional) receives how many components were rejected.
at::Tensor orthogonal_rejection(const at::Tensor& H, int64_t component, double threshold,
                                int64_t* rejected = nullptr);

struct FpcOptions {
  double mu = 4e-5;              ///< the paper's mu (App. G): min |u|_1 + 1/(2 mu) |A u - h|^2
  double beta = 4;               ///< continuation: the threshold shrinks by beta per stage
  double gamma = 0.99;           ///< first stage's threshold: gamma * |A^T h|_inf (u = 0 above it)
  double tau = 0;                ///< step in units of 1/lambda_max(A^T A); 0 = HYZ eq. 73 from d, n
  int64_t inner_iterations = 1;  ///< shrinkage steps per stage (the paper: one)
  double admit_fraction = 0.5;   ///< lambda stays >= this x max off-support |A^T(Au - h)|
  int64_t cg_iterations = 20;    ///< subspace conjugate-gradient steps per stage (0: none)
  int64_t final_iterations = 50;  ///< most stages at the target mu
  double xtol = 1e-5;             ///< stop when |u_new - u| / max(|u|, 1) < xtol at the target mu
};

struct FpcResult {
  at::Tensor u;                         ///< float32 [n]
  std::vector<double> stage_objective;  ///< lambda |u|_1 + 1/2 |Au - h|^2 after each stage
  std::vector<double> final_objective;  ///< the same after each stage at lambda = mu
  int64_t iterations = 0;               ///< shrinkage steps
  double relative_residual = 0;         ///< |A u - h| / |h|
};

using LinearMap = std::function<at::Tensor(const at::Tensor&)>;

// Solves min ||u||_1 + 1/(2 mu) ||A u - h||^2 for u in R^n. `forward`: u [n] -> A u [d];
// `adjoint`: r [d] -> A^T r [n] (float32 1-d tensors). Continuation over the threshold lambda
// from gamma ||A^T h||_inf down to mu by factors beta; per stage `inner_iterations` shrinkage
// steps (HYZ's fixed-point iteration, step tau / lambda_max(A^T A)) and then conjugate-gradient
// steps on the current support (FPC_AS's subspace optimisation): the npeff projection has
// E[A^T A] = I but A A^T ~= (n/d) I, so pure shrinkage steps crawl on the support when d << n.
FpcResult fpc(const LinearMap& forward, const LinearMap& adjoint, const at::Tensor& h, int64_t n,
              const FpcOptions& options);

// Soft thresholding: sign(x) max(|x| - t, 0).
at::Tensor shrink(const at::Tensor& x, double t);

}  // namespace npeff::recovery
