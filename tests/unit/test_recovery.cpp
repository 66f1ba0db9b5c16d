// Recovery (paper Sections 2.2.1, 3.2, App. G): orthogonal rejection against its formula on a
// hand-made case; FPC against an independent float64 ISTA solution of the same LASSO problem
// with a materialised matrix; planted sparse vectors in n = 10^6 recovered through the npeff
// projection (the phase transition over k is printed).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "npeff/projection/projection.h"
#include "npeff/recovery/recovery.h"
#include "unit/test_util.h"

namespace npeff::recovery {
namespace {

TEST(OrthogonalRejection, EqualsTheFormulaOfSection32) {
  // h0 = e1. h1 has |cos| = 0.8 >= 0.5: kept. h2 = (0.3, 0, 0.4)/0.5 has cos 0.6 with e1: kept at
  // 0.5 but rejected at 0.7. h3 = (0.1, 1, 0): cos 0.0995: rejected.
  const at::Tensor H =
      at::tensor({1.0, 0.0, 0.0, 0.8, 0.6, 0.0, 0.3, 0.0, 0.4, 0.1, 1.0, 0.0}, at::kDouble)
          .view({4, 3});
  int64_t rejected = -1;
  at::Tensor got = orthogonal_rejection(H, 0, 0.5, &rejected);
  // By hand: h = e1 - (e1 . h3_hat) h3_hat, h3_hat = (0.1, 1, 0) / sqrt(1.01).
  const double c = 0.1 / std::sqrt(1.01);
  at::Tensor want = at::tensor({1.0, 0.0, 0.0}, at::kDouble) -
                    c * at::tensor({0.1, 1.0, 0.0}, at::kDouble) / std::sqrt(1.01);
  EXPECT_EQ(rejected, 1);
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-15);
  // Threshold 0.7: h2 is rejected first (cos 0.6), then h3 with the updated h.
  got = orthogonal_rejection(H, 0, 0.7, &rejected);
  at::Tensor h = at::tensor({1.0, 0.0, 0.0}, at::kDouble);
  const at::Tensor h2 = at::tensor({0.6, 0.0, 0.8}, at::kDouble);
  h = h - at::dot(h, h2) * h2;
  const at::Tensor h3 = at::tensor({0.1, 1.0, 0.0}, at::kDouble) / std::sqrt(1.01);
  if (std::abs(at::dot(h, h3).item<double>()) / h.norm().item<double>() < 0.7)
    h = h - at::dot(h, h3) * h3;
  EXPECT_EQ(rejected, 2);
  EXPECT_LE((got - h).abs().max().item<double>(), 1e-15);
  EXPECT_TRUE(orthogonal_rejection(H, 0, 0.0).equal(H[0]));  // threshold 0: nothing rejected
  testing::expect_error([&] { orthogonal_rejection(H, 4, 0.5); }, {"component 4 is out of range"});
}

TEST(Fpc, MatchesABruteForceLassoSolution) {
  const uint64_t seed = 17;
  at::manual_seed(seed);
  const int64_t d = 60, n = 200;
  const at::Tensor A = at::randn({d, n}, at::kDouble) / std::sqrt(static_cast<double>(d));
  at::Tensor truth = at::zeros({n}, at::kDouble);
  truth.index_put_({at::tensor(std::vector<int64_t>{3, 50, 77, 120, 199})},
                   at::tensor({1.0, -2.0, 0.5, 1.5, -0.7}, at::kDouble));
  const at::Tensor b = at::matmul(A, truth) + 0.01 * at::randn({d}, at::kDouble);
  const double mu = 0.02;
  FpcOptions o;
  o.mu = mu;
  o.final_iterations = 200;
  o.xtol = 1e-9;
  const auto Af = A.to(at::kFloat);
  const FpcResult r =
      fpc([&](const at::Tensor& u) { return at::matmul(Af, u); },
          [&](const at::Tensor& y) { return at::matmul(Af.t(), y); }, b.to(at::kFloat), n, o);
  // Reference: ISTA on 1/2 |Au - b|^2 + mu |u|_1 (the same minimiser), step 1/L^2.
  const double L2 = std::pow(at::linalg_matrix_norm(A, 2).item<double>(), 2);
  at::Tensor u = at::zeros({n}, at::kDouble);
  for (int i = 0; i < 100000; ++i)
    u = shrink(u - at::matmul(A.t(), at::matmul(A, u) - b) / L2, mu / L2);
  const double err = (r.u.to(at::kDouble) - u).norm().item<double>() / u.norm().item<double>();
  EXPECT_LE(err, 1e-3) << "seed " << seed;
  // Objective non-increasing over the steps at the target weight (tau < 2 / L).
  // The objective falls from stage to stage.
  for (size_t i = 1; i < r.stage_objective.size(); ++i)
    EXPECT_LE(r.stage_objective[i], r.stage_objective[i - 1] * (1 + 1e-6))
        << "stage " << i << ", seed " << seed;
}

TEST(Fpc, RecoversPlantedSparseVectorsThroughTheProjection) {
  const int64_t n = 1000000, d = 4096;
  const projection::Projection P({5, d, 0, projection::Kind::kSparse});
  const auto forward = [&](const at::Tensor& u) {
    return projection::project(P, u.view({1, n})).view({d});
  };
  const auto adjoint = [&](const at::Tensor& y) {
    return projection::project_transpose(P, y.view({1, d}), 0, n).view({n});
  };
  std::cout << "FPC phase transition, n = 1e6, d = 4096 (k: relative error, iterations)\n";
  for (int64_t k : {10, 50, 100, 200, 400}) {
    const uint64_t seed = 100 + static_cast<uint64_t>(k);
    at::manual_seed(seed);
    at::Tensor truth = at::zeros({n}, at::kFloat);
    const at::Tensor idx = at::randperm(n, at::kLong).narrow(0, 0, k);
    truth.index_put_({idx}, at::randn({k}, at::kFloat));
    truth /= truth.norm();
    FpcOptions o;  // the paper's settings: mu 4e-5, beta 4, gamma 0.99, one inner iteration
    o.final_iterations = 15;  // past the phase transition it would only crawl
    const FpcResult r = fpc(forward, adjoint, forward(truth), n, o);
    const double err = (r.u - truth).to(at::kDouble).norm().item<double>();
    std::cout << "  k = " << k << ": " << err << ", " << r.iterations << "\n";
    if (k <= 100) {
      EXPECT_LE(err, 1e-2) << "k " << k << ", seed " << seed;
      EXPECT_LE(r.relative_residual, 1e-2) << "k " << k << ", seed " << seed;
    }
    // The objective falls from stage to stage.
    for (size_t i = 1; i < r.stage_objective.size(); ++i)
      EXPECT_LE(r.stage_objective[i], r.stage_objective[i - 1] * (1 + 1e-6))
          << "k " << k << " stage " << i;
  }
}

}  // namespace
}  // namespace npeff::recovery
