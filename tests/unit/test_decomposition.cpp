// Tests of the NPEFF decomposition (Algorithm 1 / Appendix C) against planted ground truth and a
// brute-force n x n evaluation of the loss.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <cmath>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/decomposition/decomposition.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/decomposition/fit_coeffs_job.h"
#include "npeff/dist/communicator.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/pef_source.h"
#include "npeff/io/schema.h"
#include "npeff/projection/projection.h"
#include "npeff/synth/planted_pefs.h"
#include "unit/test_util.h"

namespace npeff::decomposition {
namespace {

// Hyperparameters for the small planted problems below (m = 400, n = 256), chosen by a sweep
// (H-only lr in {1e-3, 3e-3, 1e-2, 3e-2} x joint lr in {1e-3 .. 3e-2}): the largest joint rate
// with no loss increase. The H gradient sums over examples, so rates depend on m and n; the
// paper's defaults (1e-5 / 3e-4) are for m = 60,000, n = 16,192.
constexpr double kLr = 0.003;
constexpr double kHOnlyLr = 0.001;
constexpr int kHOnlySteps = 300;
constexpr int kJointSteps = 700;

struct Trained {
  Decomposer dec;
  std::vector<double> losses;  // loss at the start of every step
};

Trained decompose(const at::Tensor& pefs, std::int64_t components, std::uint64_t seed,
                  int h_only = kHOnlySteps, int joint = kJointSteps) {
  Trained run{Decomposer(pefs, components), {}};
  run.dec.initialize(seed);
  for (int t = 0; t < h_only + joint; ++t) {
    double loss = 0;
    run.dec.step(t >= h_only, t < h_only ? kHOnlyLr : kLr, &loss);
    run.losses.push_back(loss);
  }
  run.dec.normalize_components();
  return run;
}

// For each planted component, the best |cos| among the learned ones, matched greedily one to one.
std::vector<float> matched_cosines(const at::Tensor& learned, const at::Tensor& planted) {
  at::Tensor cos =
      at::mm(planted / planted.norm(2, {1}, true), (learned / learned.norm(2, {1}, true)).t())
          .abs();
  std::vector<float> best(static_cast<std::size_t>(planted.size(0)), 0.0f);
  for (std::int64_t k = 0; k < planted.size(0); ++k) {
    const auto flat = cos.argmax().item<std::int64_t>();
    const std::int64_t i = flat / cos.size(1), j = flat % cos.size(1);
    best[i] = cos[i][j].item<float>();
    cos.select(0, i).fill_(-1);
    cos.select(1, j).fill_(-1);
  }
  return best;
}

TEST(Decomposition, RecoversPlantedComponents) {
  const synth::PlantedPefs planted = synth::make_planted_pefs({400, 256, 16, 4, 0.0, 1});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  const Trained run = decompose(g, 16, 3);
  const double initial = run.losses.front();
  const double final_loss = npeff_loss(g, run.dec.w(), run.dec.h());
  EXPECT_LT(final_loss / pef_sq_norm_sum(g), 1e-3) << "initial loss " << initial;
  for (float c : matched_cosines(run.dec.h(), planted.h)) EXPECT_GE(c, 0.99f);
}

TEST(Decomposition, DegradesGracefullyWithNoise) {
  // Relative loss and matched |cos| per noise level (printed: the degradation curve).
  double previous_loss = -1;
  for (double noise : {0.0, 0.05, 0.1, 0.2}) {
    const synth::PlantedPefs planted = synth::make_planted_pefs({400, 256, 16, 4, noise, 2});
    at::Tensor g = planted.pefs.clone();
    normalize_pefs(g);
    const Trained run = decompose(g, 16, 4);
    const double rel = npeff_loss(g, run.dec.w(), run.dec.h()) / pef_sq_norm_sum(g);
    const auto cos = matched_cosines(run.dec.h(), planted.h);
    const float worst = *std::min_element(cos.begin(), cos.end());
    std::printf("noise %.2f: relative loss %.3e, worst matched |cos| %.4f\n", noise, rel, worst);
    EXPECT_GE(worst, noise <= 0.1 ? 0.95f : 0.85f) << "noise " << noise;
    EXPECT_GT(rel, previous_loss) << "loss should grow with noise";
    previous_loss = rel;
  }
}

TEST(Decomposition, LossIsNonIncreasing) {
  const synth::PlantedPefs planted = synth::make_planted_pefs({400, 256, 16, 4, 0.0, 5});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  const Trained run = decompose(g, 16, 6);
  // The C-space loss is a difference of O(m) terms; allow float32 cancellation noise.
  const double noise = 1e-6 * pef_sq_norm_sum(g);  // float32 cancellation in the C-space loss
  for (std::size_t t = 1; t < run.losses.size(); ++t)
    ASSERT_LE(run.losses[t], run.losses[t - 1] + noise) << "step " << t;
}

TEST(Decomposition, LossIsNonIncreasingWithDefaultLearningRates) {
  // The paper's defaults (DecomposeOptions: 1e-5 for the H-only steps, 3e-4 for joint steps),
  // shortened schedule, on the planted problem.
  const DecomposeOptions defaults;
  const synth::PlantedPefs planted = synth::make_planted_pefs({400, 256, 16, 4, 0.0, 5});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  Decomposer dec(g, 16);
  dec.initialize(defaults.seed);
  const double noise = 1e-6 * pef_sq_norm_sum(g);
  double previous = 0;
  for (int t = 0; t < 600; ++t) {
    const bool joint = t >= 200;
    double loss = 0;
    dec.step(joint, joint ? defaults.lr : defaults.h_only_lr, &loss);
    if (t > 0) {
      ASSERT_LE(loss, previous + noise) << "step " << t;
    }
    previous = loss;
  }
}

TEST(Decomposition, CoefficientStepNeverIncreasesLoss) {
  const synth::PlantedPefs planted = synth::make_planted_pefs({100, 64, 8, 3, 0.1, 7});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  Decomposer dec(g, 8);
  dec.initialize(8);
  for (int t = 0; t < 60; ++t) {
    if (t % 3 == 0) dec.step(false, 0.05);  // move H so that W is not at a fixed point
    const double before = npeff_loss(g, dec.w(), dec.h());
    dec.update_coefficients();
    const double after = npeff_loss(g, dec.w(), dec.h());
    ASSERT_LE(after, before + 1e-6 * std::abs(before)) << "iteration " << t;
  }
}

TEST(Decomposition, LossEqualsBruteForce) {
  // Tiny random case: materialise every n x n matrix in float64.
  const std::int64_t m = 5, r = 3, n = 12, c = 4;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const at::Tensor g = at::randn({m, r, n}, gen, at::kFloat);
  const at::Tensor w = at::rand({m, c}, gen, at::kFloat);
  const at::Tensor h = at::randn({c, n}, gen, at::kFloat);
  const at::Tensor gd = g.to(at::kDouble), wd = w.to(at::kDouble), hd = h.to(at::kDouble);
  const at::Tensor per = npeff_example_losses(g, w, h);
  double total = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    at::Tensor f = at::mm(gd[i].t(), gd[i]);
    for (std::int64_t j = 0; j < c; ++j) f = f - wd[i][j] * at::outer(hd[j], hd[j]);
    const double li = f.square().sum().item<double>();
    EXPECT_NEAR(per[i].item<double>(), li, 1e-5 * li) << "example " << i;
    total += li;
  }
  EXPECT_NEAR(npeff_loss(g, w, h), total, 1e-5 * total);
}

TEST(Decomposition, ExampleLossesOfAGoodFitAgreeWithBruteForce) {
  // G_i's rows are sqrt(w_ij) h_j, so W fits exactly; W scaled by (1 + 1e-3) leaves a true loss
  // ~1e-6 of ||G_i^T G_i||^2. The C-space identity subtracts terms of size ||G_i^T G_i||^2:
  // float32 products would get this loss wrong by ~10%; float64 gets it to ~1e-9.
  const std::int64_t m = 6, c = 3, n = 96;
  const std::uint64_t seed = 23;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor h = at::randn({c, n}, gen, at::kFloat);
  const at::Tensor w = at::rand({m, c}, gen, at::kFloat).add_(0.5);
  const at::Tensor g = (w.sqrt().unsqueeze(2) * h.unsqueeze(0)).contiguous();  // [m, c, n]
  const at::Tensor w_off = w.to(at::kDouble).mul(1 + 1e-3).to(at::kFloat);
  const at::Tensor per = npeff_example_losses(g, w_off, h);
  const at::Tensor gd = g.to(at::kDouble), wd = w_off.to(at::kDouble), hd = h.to(at::kDouble);
  for (std::int64_t i = 0; i < m; ++i) {
    at::Tensor f = at::mm(gd[i].t(), gd[i]);
    const double g_sq = f.square().sum().item<double>();
    for (std::int64_t j = 0; j < c; ++j) f = f - wd[i][j] * at::outer(hd[j], hd[j]);
    const double li = f.square().sum().item<double>();
    ASSERT_LT(li, 1e-4 * g_sq) << "seed " << seed << ": the case is meant to be a good fit";
    EXPECT_NEAR(per[i].item<double>(), li, 1e-6 * li) << "example " << i << ", seed " << seed;
  }
}

class FileSource : public npeff::testing::TempDirTest {};

TEST_F(FileSource, BlocksEqualTheNormalisedPefsAcrossShardsInAnyOrder) {
  // Two shard files (70 + 50 examples), a local range starting inside the first and blocks of 32
  // that straddle the shard boundary: every block, requested in order (the prefetched path) or
  // out of order (a prefetch discarded), equals the in-memory normalised PEFs bit for bit, and the
  // setup pass's sum ||G_i^T G_i||^2 equals pef_sq_norm_sum of those.
  const synth::PlantedPefs planted = synth::make_planted_pefs({120, 40, 5, 2, 0.1, 3});
  std::vector<io::PefFileInfo> infos;
  for (const auto& [name, first, count] :
       {std::tuple<const char*, int64_t, int64_t>{"a.h5", 0, 70}, {"b.h5", 70, 50}}) {
    io::File f = io::File::create(path(name));
    io::write_header(f, {io::kPefSchema, io::kPefSchemaVersion}, nlohmann::json::object());
    io::write_pefs(f, planted.pefs.narrow(0, first, count), at::arange(first, first + count),
                   at::ones({count}, at::kDouble), nullptr);
    f.commit();
    infos.push_back(io::read_pef_info(path(name)));
  }
  const int64_t first = 9, count = 100, block = 32;
  io::FilePefSource source(infos, first, count, at::kCPU, block);
  at::Tensor want = planted.pefs.narrow(0, first, count).clone();
  normalize_pefs(want);
  EXPECT_NEAR(source.known_sq_norm_sum(), pef_sq_norm_sum(want), 1e-12 * count);
  EXPECT_TRUE(at::equal(source.example_ids(), at::arange(first, first + count)));
  for (const int64_t b0 : {0, 32, 64, 96, 64, 0, 96, 32}) {
    const int64_t k = std::min(block, count - b0);
    EXPECT_TRUE(at::equal(source.block(b0, k), want.narrow(0, b0, k))) << "block at " << b0;
  }
}

TEST(Decomposition, NormalisationKeepsReconstructions) {
  const synth::PlantedPefs planted = synth::make_planted_pefs({50, 32, 6, 2, 0.0, 9});
  at::Tensor g = planted.pefs.clone();
  const at::Tensor norms = normalize_pefs(g);
  const at::Tensor k = at::bmm(g.to(at::kDouble), g.to(at::kDouble).transpose(1, 2));
  EXPECT_TRUE(at::allclose(k.square().sum({1, 2}), at::ones({50}, at::kDouble), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(norms, at::ones({50}, at::kDouble), 1e-4, 1e-4));  // planted: unit
  Decomposer dec(g, 6);
  dec.initialize(1);
  for (int t = 0; t < 20; ++t) dec.step(t > 5, 0.05);
  const double before = npeff_loss(g, dec.w(), dec.h());
  dec.normalize_components();
  EXPECT_NEAR(npeff_loss(g, dec.w(), dec.h()), before, 1e-5 * before);
  EXPECT_TRUE(at::allclose(dec.h().norm(2, {1}), at::ones({6}), 1e-5, 1e-5));
}

TEST(Decomposition, FitCoefficientsReproducesW) {
  const synth::PlantedPefs planted = synth::make_planted_pefs({400, 256, 16, 4, 0.0, 1});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  const Trained run = decompose(g, 16, 3);
  const at::Tensor w = fit_coefficients(g, run.dec.h(), 2000, 99);
  const double rel = ((w - run.dec.w()).norm() / run.dec.w().norm()).item<double>();
  EXPECT_LE(rel, 1e-3);
}

TEST(Decomposition, Bf16ComputeStillRecoversPlantedComponents) {
  // bfloat16 products (8-bit mantissa): the loss floor rises but the components are found.
  const synth::PlantedPefs planted = synth::make_planted_pefs({400, 256, 16, 4, 0.0, 1});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  Decomposer dec(g, 16);
  dec.set_compute_dtype(ComputeDtype::kBf16);
  dec.initialize(3);
  for (int t = 0; t < kHOnlySteps + kJointSteps; ++t)
    dec.step(t >= kHOnlySteps, t < kHOnlySteps ? kHOnlyLr : kLr);
  dec.normalize_components();
  EXPECT_LT(npeff_loss(g, dec.w(), dec.h()) / pef_sq_norm_sum(g), 1e-2);
  for (float c : matched_cosines(dec.h(), planted.h)) EXPECT_GE(c, 0.99f);
  EXPECT_THROW(dec.set_compute_dtype(ComputeDtype::kTf32), Error);  // CPU tensors
  EXPECT_THROW(parse_compute_dtype("fp8"), Error);
}

TEST(Decomposition, CommutesWithTheRandomProjection) {
  // Appendix C.6: decomposing projected PEFs G_i A^T gives (approximately) the coefficients of
  // decomposing the unprojected ones, because A preserves inner products. Planted problem in
  // n = 10^5, projected to d = 4096 with the paper's sparse projection.
  const std::int64_t m = 120, n = 100000, d = 4096, c = 8;
  const synth::PlantedPefs planted = synth::make_planted_pefs({m, n, c, 2, 0.0, 21});
  at::Tensor g = planted.pefs.clone();
  const projection::Projection proj({5, d, 0, projection::Kind::kSparse});
  at::Tensor gp = projection::project(proj, g.reshape({-1, n})).reshape({m, -1, d});
  normalize_pefs(g);
  normalize_pefs(gp);
  // The same initial state in both spaces: W0, and H0' = H0 A^T (the projection of H0's rows).
  Decomposer full(g, c), projected(gp, c);
  full.initialize(7);
  projected.set_state(full.w(), projection::project(proj, full.h()));
  for (Decomposer* dec : {&full, &projected}) {
    for (int t = 0; t < 300; ++t) dec->step(t >= 100, t < 100 ? 0.003 : 0.01);
    dec->normalize_components();
  }
  const at::Tensor w = full.w(), wp = projected.w();
  // Both reach the planted solution; components may come out in another order (the projection
  // perturbs the early trajectory), so coefficient columns are matched one to one first.
  const auto cos = matched_cosines(wp.t(), w.t());
  const float worst = *std::min_element(cos.begin(), cos.end());
  std::printf(
      "relative loss: unprojected %.3e, projected %.3e; matched coefficient cosine min %.5f\n",
      npeff_loss(g, w, full.h()) / pef_sq_norm_sum(g),
      npeff_loss(gp, wp, projected.h()) / pef_sq_norm_sum(gp), worst);
  EXPECT_GE(worst, 0.99f);
}

TEST(Decomposition, BlocksAndStorageDtypesAgree) {
  // Streaming the examples in blocks, or holding G as float16, changes only float rounding.
  const synth::PlantedPefs planted = synth::make_planted_pefs({300, 128, 8, 3, 0.05, 4});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  auto run = [&](Decomposer dec, std::int64_t block) {
    dec.set_block_examples(block);
    dec.initialize(2);
    for (int t = 0; t < 100; ++t) dec.step(t >= 30, 0.003);
    return std::make_pair(dec.w(), dec.h());
  };
  const auto whole = run(Decomposer(g, 8), 0);
  const auto blocked = run(Decomposer(g, 8), 64);  // 300 = 4 x 64 + 44: uneven last block
  auto rel = [](const at::Tensor& a, const at::Tensor& b) {
    return ((a - b).norm() / a.norm()).item<double>();
  };
  EXPECT_LT(rel(whole.first, blocked.first), 1e-5);
  EXPECT_LT(rel(whole.second, blocked.second), 1e-5);
  const auto half = run(Decomposer(memory_source(g.to(at::kHalf)), 8, dist::world(), -1, 0), 64);
  EXPECT_LT(rel(whole.first, half.first), 1e-2);  // float16 storage: 11-bit mantissa
  EXPECT_LT(rel(whole.second, half.second), 1e-2);
}

TEST(Decomposition, SameSeedSameBits) {
  const synth::PlantedPefs planted = synth::make_planted_pefs({100, 64, 8, 3, 0.0, 2});
  at::Tensor g = planted.pefs.clone();
  normalize_pefs(g);
  const Trained a = decompose(g, 8, 5, 20, 50), b = decompose(g, 8, 5, 20, 50);
  EXPECT_TRUE(at::equal(a.dec.w(), b.dec.w()));
  EXPECT_TRUE(at::equal(a.dec.h(), b.dec.h()));
}

TEST(Decomposition, RejectsBadShapes) {
  const at::Tensor g = at::randn({5, 2, 10});
  EXPECT_THROW(Decomposer(g, 6), Error);  // C > m
  EXPECT_THROW(Decomposer(g, 0), Error);
  EXPECT_THROW(Decomposer(g.to(at::kDouble), 2), Error);
  Decomposer dec(g, 2);
  EXPECT_THROW(dec.set_state(at::zeros({5, 3}), at::zeros({2, 10})), Error);
  EXPECT_THROW(fit_coefficients(g, at::zeros({2, 11}), 3, 0), Error);
}

}  // namespace
}  // namespace npeff::decomposition

namespace npeff::decomposition {
namespace {

TEST_F(FileSource, FitCoeffsJobInBlocksEqualsTheInMemoryFit) {
  // Two shard files (raw, unnormalised PEFs: the job normalises per block), blocks of 7 examples
  // straddling the shard boundary, on components from a short decomposition. Reference: the
  // in-memory fit_coefficients and npeff_example_losses (float64) of the whole normalised set.
  // Bounds: W is an elementwise update of the same N rows, blocked or not (float32 products of
  // the same rows, ~1e-6 relative); the losses are float64 in both (~1e-12 relative).
  const synth::PlantedPefs planted = synth::make_planted_pefs({90, 48, 6, 3, 0.05, 5});
  const at::Tensor raw = planted.pefs * at::linspace(0.5, 3.0, 90).view({-1, 1, 1});
  for (const auto& [name, first, count] :
       {std::tuple<const char*, int64_t, int64_t>{"a.h5", 0, 40}, {"b.h5", 40, 50}}) {
    io::File f = io::File::create(path(name));
    io::write_header(f, {io::kPefSchema, io::kPefSchemaVersion}, nlohmann::json::object());
    io::write_pefs(f, raw.narrow(0, first, count), at::arange(100 + first, 100 + first + count),
                   at::ones({count}, at::kDouble), nullptr);
    f.commit();
  }
  at::Tensor g = raw.clone();
  normalize_pefs(g);
  const Trained run = decompose(g, 5, 2, 100, 200);
  DecompositionData data;
  data.w = run.dec.w().clone();
  data.h = run.dec.h().clone();
  data.example_ids = at::arange(90);
  {
    io::File f = io::File::create(path("d.h5"));
    io::write_header(f, {"npeff.decomposition", 1}, nlohmann::json::object());
    write_factors(f, data);
    f.commit();
  }
  const at::Tensor w_ref = fit_coefficients(g, data.h, 300, 7);
  const at::Tensor loss_ref = npeff_example_losses(g, w_ref, data.h);
  FitCoeffsJobOptions o;
  o.pefs = {path("a.h5"), path("b.h5")};
  o.decomposition = path("d.h5");
  o.steps = 300;
  o.seed = 7;
  o.max_block_bytes = 7 * 3 * 48 * 4;  // 7 examples of r = 3, d = 48
  const FitCoeffsResult got = run_fit_coeffs_job(o);
  EXPECT_EQ(got.blocks, 13);
  EXPECT_TRUE(at::equal(got.example_ids, at::arange(100, 190)));
  const double w_err = ((got.w - w_ref).abs().max() / w_ref.abs().max()).item<double>();
  EXPECT_LE(w_err, 1e-5) << "seed 7";
  const double loss_err =
      ((got.example_loss - loss_ref).abs().max() / loss_ref.abs().max()).item<double>();
  EXPECT_LE(loss_err, 1e-9) << "seed 7";
  EXPECT_GT(loss_ref.min().item<double>(), 0);  // a real loss, not a clamped zero

  // A non-finite PEF is refused by its example id.
  at::Tensor bad = raw.narrow(0, 0, 40).clone();
  bad[13][0][0] = std::nanf("");
  {
    io::File f = io::File::create(path("a.h5"));
    io::write_header(f, {io::kPefSchema, io::kPefSchemaVersion}, nlohmann::json::object());
    io::write_pefs(f, bad, at::arange(100, 140), at::ones({40}, at::kDouble), nullptr);
    f.commit();
  }
  try {
    run_fit_coeffs_job(o);
    FAIL() << "a NaN PEF was fitted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("example 113 "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace npeff::decomposition
