// Tests of the sparse random projection against an independent float64 materialisation of the
// documented matrix, plus its algebraic and statistical properties.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "npeff/core/error.h"
#include "npeff/core/runtime.h"
#include "npeff/projection/projection.h"
#include "projection/projection_cpu.h"
#include "unit/projection_reference.h"

// Both instruction-set builds of the kernels (src/projection/projection_cpu.cpp).
namespace npeff::projection::cpu {
#define NPEFF_TEST_DECLARE(isa)                                                        \
  namespace isa {                                                                      \
  void project_accumulate(const Projection&, const float*, std::int64_t, std::int64_t, \
                          std::int64_t, std::int64_t, float*, std::int64_t);           \
  void project_transpose(const Projection&, const float*, std::int64_t, std::int64_t,  \
                         std::int64_t, std::int64_t, float*, std::int64_t);            \
  }
NPEFF_TEST_DECLARE(baseline)
#ifdef NPEFF_CPU_AVX2
NPEFF_TEST_DECLARE(avx2)
NPEFF_TEST_DECLARE(avx512)
#endif
#undef NPEFF_TEST_DECLARE
}  // namespace npeff::projection::cpu

namespace npeff::projection {
namespace {

using npeff::testing::ReferenceProjection;

constexpr double kUnitRoundoff = 5.960464477539063e-08;  // 2^-24, float32

std::vector<float> random_vector(std::int64_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<std::size_t>(count));
  for (auto& e : v) e = normal(rng);
  return v;
}

at::Tensor as_tensor(std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  return at::from_blob(v.data(), {rows, cols}, at::kFloat);
}

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() &&
         std::memcmp(a.contiguous().data_ptr<float>(), b.contiguous().data_ptr<float>(),
                     a.numel() * sizeof(float)) == 0;
}

struct Case {
  std::int64_t n, d, region_size;
  std::uint64_t seed;
  Kind kind;
  std::int64_t rows;
};

std::string describe(const Case& c) {
  return "n=" + std::to_string(c.n) + " d=" + std::to_string(c.d) +
         " s=" + std::to_string(c.region_size) + " seed=" + std::to_string(c.seed) +
         " kind=" + to_string(c.kind) + " rows=" + std::to_string(c.rows);
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {1000, 64, 0, 1, Kind::kSparse, 3},     // s = 2
      {4097, 100, 0, 2, Kind::kSparse, 13},   // d not a multiple of 32 (s = 3), partial last chunk
      {300, 32, 0, 3, Kind::kSparse, 1},      // s = 1
      {20000, 1024, 0, 4, Kind::kSparse, 8},  // s = 32, several tiles
      {777, 256, 0, 5, Kind::kDense, 2},      // dense Rademacher
      {5000, 48, 7, 6, Kind::kSparse, 5},     // explicit region size, n % s != 0
  };
  return all;
}

// Sequential float32 summation of k terms, each rounded once when scaled, is within
// (k + 1) u sum|terms| of the exact sum (Higham, Numerical Stability, eq. 4.4); we allow 2x.
double rounding_bound(std::int64_t terms, double abs_sum) {
  return 2.0 * (terms + 1) * kUnitRoundoff * abs_sum + 1e-30;
}

TEST(Projection, ResolvesRegionSizeAndScale) {
  Projection p({0, 16192, 0, Kind::kSparse});
  EXPECT_EQ(p.region_size(), 506);  // the paper's d = 16,192 -> s = d / 32
  EXPECT_FLOAT_EQ(p.scale(), static_cast<float>(std::sqrt(506.0 / 16192)));
  EXPECT_EQ(Projection({0, 100, 0, Kind::kSparse}).region_size(), 3);
  EXPECT_EQ(Projection({0, 20, 0, Kind::kSparse}).region_size(), 1);
  EXPECT_EQ(Projection({0, 512, 0, Kind::kDense}).region_size(), 1);
}

TEST(Projection, MatchesMaterialisedMatrix) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    const Projection p({c.seed, c.d, c.region_size, c.kind});
    const ReferenceProjection ref{c.seed, c.d, p.region_size()};
    const std::vector<double> a = ref.materialise(c.n);
    std::vector<float> x = random_vector(c.rows * c.n, 100 + c.seed);
    std::vector<double> y_ref, mag;
    npeff::testing::reference_apply(a, c.d, c.n, x, c.rows, y_ref, mag);
    const at::Tensor y = project(p, as_tensor(x, c.rows, c.n));
    const std::int64_t terms = (c.n + p.region_size() - 1) / p.region_size();
    for (std::int64_t r = 0; r < c.rows; ++r)
      for (std::int64_t j = 0; j < c.d; ++j) {
        const double got = y[r][j].item<float>();
        ASSERT_NEAR(got, y_ref[r * c.d + j], rounding_bound(terms, mag[r * c.d + j]))
            << "row " << r << " output " << j;
      }
  }
}

TEST(Projection, EntriesMatchReferenceGenerator) {
  // Checks Projection::entry (used by docs and tools) against the independent generator.
  const Projection p({42, 96, 0, Kind::kSparse});
  const ReferenceProjection ref{42, 96, p.region_size()};
  const std::vector<double> a = ref.materialise(50);
  for (std::int64_t j = 0; j < 96; ++j)
    for (std::int64_t i = 0; i < 50; ++i)
      ASSERT_EQ(static_cast<double>(p.entry(j, i)), a[j * 50 + i]) << "j=" << j << " i=" << i;
}

TEST(Projection, TransposeMatchesMaterialisedMatrix) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    const Projection p({c.seed, c.d, c.region_size, c.kind});
    const ReferenceProjection ref{c.seed, c.d, p.region_size()};
    const std::vector<double> a = ref.materialise(c.n);
    std::vector<float> y = random_vector(c.rows * c.d, 200 + c.seed);
    const at::Tensor x = project_transpose(p, as_tensor(y, c.rows, c.d), 0, c.n);
    for (std::int64_t r = 0; r < c.rows; ++r)
      for (std::int64_t i = 0; i < c.n; ++i) {
        double exact = 0, mag = 0;
        std::int64_t terms = 0;
        for (std::int64_t j = 0; j < c.d; ++j) {
          const double t = a[j * c.n + i] * y[r * c.d + j];
          exact += t;
          mag += std::fabs(t);
          terms += a[j * c.n + i] != 0;
        }
        ASSERT_NEAR(x[r][i].item<float>(), exact, rounding_bound(terms, mag))
            << "row " << r << " entry " << i;
      }
  }
}

TEST(Projection, TransposeMatchesReferenceAtPaperDimensions) {
  // d = 1,024 and the paper's 16,384 (s = d / 32), a slice starting and ending mid-chunk: every
  // entry within the summation bound of its float64 sum over the independent generator's picks
  // (the matrix itself would be 16,384 x n: the picks are enumerated chunk by chunk instead).
  for (const std::int64_t d : {std::int64_t{1024}, std::int64_t{16384}}) {
    const std::uint64_t seed = 31 + static_cast<std::uint64_t>(d);
    const Projection p({seed, d, 0, Kind::kSparse});
    const npeff::testing::ReferenceProjection ref{seed, d, p.region_size()};
    const std::int64_t s = p.region_size(), offset = 3 * s + 17, n = 9 * s + 101, rows = 3;
    SCOPED_TRACE("d=" + std::to_string(d) + " s=" + std::to_string(s) +
                 " seed=" + std::to_string(seed));
    std::vector<float> y = random_vector(rows * d, seed);
    const at::Tensor x = project_transpose(p, as_tensor(y, rows, d), offset, n);
    std::vector<double> exact(rows * n, 0.0), mag(rows * n, 0.0);
    std::vector<std::int64_t> terms(n, 0);
    for (std::int64_t c = offset / s; c <= (offset + n - 1) / s; ++c)
      for (std::int64_t j = 0; j < d; ++j) {
        const auto [g, sign] = ref.pick(c, j);
        if (g < offset || g >= offset + n) continue;
        ++terms[g - offset];
        for (std::int64_t r = 0; r < rows; ++r) {
          const double t = sign * ref.scale() * y[r * d + j];
          exact[r * n + (g - offset)] += t;
          mag[r * n + (g - offset)] += std::fabs(t);
        }
      }
    const auto xa = x.accessor<float, 2>();
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(xa[r][i], exact[r * n + i], rounding_bound(terms[i], mag[r * n + i]))
            << "row " << r << " entry " << i << " (" << terms[i] << " terms)";
  }
}

TEST(Projection, SliceStreamingEqualsWholeVectorBitForBit) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    const Projection p({c.seed, c.d, c.region_size, c.kind});
    std::vector<float> x = random_vector(c.rows * c.n, 300 + c.seed);
    const at::Tensor xt = as_tensor(x, c.rows, c.n);
    const at::Tensor whole = project(p, xt);
    std::mt19937_64 rng(c.seed);
    at::Tensor streamed = at::zeros({c.rows, c.d}, at::kFloat);
    for (std::int64_t begin = 0; begin < c.n;) {
      // Slices of random length (1 .. 3s+5), so they start and end mid-chunk.
      const std::int64_t len = std::min<std::int64_t>(
          c.n - begin, 1 + static_cast<std::int64_t>(rng() % (3 * p.region_size() + 5)));
      project_accumulate(p, xt.narrow(1, begin, len), begin, streamed);
      begin += len;
    }
    EXPECT_TRUE(bit_equal(whole, streamed));
    // Transpose: slices of A^T y equal the corresponding part of the whole.
    std::vector<float> y = random_vector(c.rows * c.d, 400 + c.seed);
    const at::Tensor yt = as_tensor(y, c.rows, c.d);
    const at::Tensor back = project_transpose(p, yt, 0, c.n);
    const std::int64_t mid = c.n / 3 + 1, len = c.n / 2;
    EXPECT_TRUE(bit_equal(back.narrow(1, mid, len), project_transpose(p, yt, mid, len)));
  }
}

TEST(Projection, AdjointIdentity) {
  // <A x, y> = <x, A^T y> up to float rounding of both sides.
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    const Projection p({c.seed, c.d, c.region_size, c.kind});
    std::vector<float> x = random_vector(c.n, 500 + c.seed);
    std::vector<float> y = random_vector(c.d, 600 + c.seed);
    const at::Tensor ax = project(p, as_tensor(x, 1, c.n)).to(at::kDouble);
    const at::Tensor aty = project_transpose(p, as_tensor(y, 1, c.d), 0, c.n).to(at::kDouble);
    const double lhs = (ax * as_tensor(y, 1, c.d).to(at::kDouble)).sum().item<double>();
    const double rhs = (aty * as_tensor(x, 1, c.n).to(at::kDouble)).sum().item<double>();
    const double scale = std::sqrt(static_cast<double>(c.n) * c.d) * p.scale() * 8;
    EXPECT_NEAR(lhs, rhs, 1e-5 * scale) << "lhs " << lhs << " rhs " << rhs;
  }
}

TEST(Projection, ThreadCountDoesNotChangeResults) {
  const int saved = num_threads();
  const Case c{70001, 512, 0, 9, Kind::kSparse, 11};
  const Projection p({c.seed, c.d, c.region_size, c.kind});
  std::vector<float> x = random_vector(c.rows * c.n, 9);
  std::vector<float> y = random_vector(c.rows * c.d, 10);
  std::vector<at::Tensor> fwd, bwd;
  for (int threads : {1, 2, 3, 4}) {
    set_num_threads(threads);
    fwd.push_back(project(p, as_tensor(x, c.rows, c.n)));
    bwd.push_back(project_transpose(p, as_tensor(y, c.rows, c.d), 0, c.n));
  }
  set_num_threads(saved);
  for (std::size_t k = 1; k < fwd.size(); ++k) {
    EXPECT_TRUE(bit_equal(fwd[0], fwd[k])) << "forward differs at thread setting " << k;
    EXPECT_TRUE(bit_equal(bwd[0], bwd[k])) << "transpose differs at thread setting " << k;
  }
}

TEST(Projection, InstructionSetVariantsGiveTheSameBits) {
  // The baseline, AVX2 and AVX-512 builds of the kernels (src/projection/projection_cpu.cpp)
  // must agree bit for bit: a portable binary gives the results of an optimised one.
#ifndef NPEFF_CPU_AVX2
  GTEST_SKIP() << "built with -DNPEFF_NATIVE=ON or not for x86-64: one variant only";
#else
  using Forward = void (*)(const Projection&, const float*, std::int64_t, std::int64_t,
                           std::int64_t, std::int64_t, float*, std::int64_t);
  std::vector<std::pair<std::string, std::pair<Forward, Forward> > > variants = {
      {"baseline", {cpu::baseline::project_accumulate, cpu::baseline::project_transpose}}};
  const std::string best = cpu::kernel_isa();
  if (best == "avx2" || best == "avx512")
    variants.push_back({"avx2", {cpu::avx2::project_accumulate, cpu::avx2::project_transpose}});
  if (best == "avx512")
    variants.push_back(
        {"avx512", {cpu::avx512::project_accumulate, cpu::avx512::project_transpose}});
  if (variants.size() == 1) GTEST_SKIP() << "this CPU runs the baseline only";
  for (const Case& c : cases()) {
    const Projection p({c.seed, c.d, c.region_size, c.kind});
    std::vector<float> x = random_vector(c.rows * c.n, c.seed), y = random_vector(c.rows * c.d, 3);
    std::vector<std::vector<float> > fwd, bwd;
    for (const auto& [name, fn] : variants) {
      fwd.emplace_back(c.rows * c.d, 0.f);
      bwd.emplace_back(c.rows * c.n, 0.f);
      fn.first(p, x.data(), c.rows, c.n, c.n, 0, fwd.back().data(), c.d);
      fn.second(p, y.data(), c.rows, c.d, 0, c.n, bwd.back().data(), c.n);
    }
    for (std::size_t v = 1; v < variants.size(); ++v) {
      EXPECT_EQ(std::memcmp(fwd[0].data(), fwd[v].data(), fwd[0].size() * sizeof(float)), 0)
          << variants[v].first << " forward differs from baseline, " << describe(c);
      EXPECT_EQ(std::memcmp(bwd[0].data(), bwd[v].data(), bwd[0].size() * sizeof(float)), 0)
          << variants[v].first << " transpose differs from baseline, " << describe(c);
    }
  }
#endif
}

TEST(Projection, BatchingDoesNotChangeRows) {
  // Row r of a batch equals projecting that row alone (rows are grouped by 8/4/2/1 internally).
  const Projection p({11, 256, 0, Kind::kSparse});
  const std::int64_t rows = 7, n = 3001;
  std::vector<float> x = random_vector(rows * n, 11);
  const at::Tensor xt = as_tensor(x, rows, n);
  const at::Tensor batch = project(p, xt);
  for (std::int64_t r = 0; r < rows; ++r)
    EXPECT_TRUE(bit_equal(batch.narrow(0, r, 1), project(p, xt.narrow(0, r, 1)))) << "row " << r;
}

TEST(Projection, DifferentSeedsGiveDifferentMatrices) {
  const std::int64_t d = 256, n = 2048;
  const ReferenceProjection a{1, d, 8}, b{2, d, 8};
  const Projection pa({1, d, 0, Kind::kSparse}), pb({2, d, 0, Kind::kSparse});
  std::int64_t same = 0, total = 0;
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t c = 0; c < n / 8; ++c) {
      const auto ea = pa.pick(c, j), eb = pb.pick(c, j);
      same += ea.index == eb.index && ea.negative == eb.negative;
      ++total;
    }
  // Independent matrices agree on a pick (same position and sign) with probability 1/(2s).
  const double rate = static_cast<double>(same) / total, expected = 1.0 / 16;
  EXPECT_NEAR(rate, expected, 5 * std::sqrt(expected / total)) << "agreement rate " << rate;
  (void)a;
  (void)b;
}

TEST(Projection, PicksAreUniformAndSignsBalanced) {
  // Each (chunk, output) pick is uniform over the chunk: per-entry counts over d outputs are
  // Binomial(d, 1/s): mean d/s (each input lands in d/s = 32 outputs on average), variance
  // d/s (1 - 1/s). Signs are +-1 with probability 1/2.
  const std::int64_t d = 1024, chunks = 1024;
  const Projection p({77, d, 0, Kind::kSparse});
  const std::int64_t s = p.region_size();
  ASSERT_EQ(s, 32);
  std::vector<std::int64_t> count(static_cast<std::size_t>(chunks * s), 0);
  std::int64_t negatives = 0;
  for (std::int64_t c = 0; c < chunks; ++c)
    for (std::int64_t j = 0; j < d; ++j) {
      const auto e = p.pick(c, j);
      ASSERT_GE(e.index, c * s);
      ASSERT_LT(e.index, (c + 1) * s);
      ++count[e.index];
      negatives += e.negative;
    }
  double mean = 0, var = 0;
  for (auto k : count) mean += k;
  mean /= count.size();
  for (auto k : count) var += (k - mean) * (k - mean);
  var /= count.size() - 1;
  EXPECT_DOUBLE_EQ(mean, 32.0);
  const double expected_var = 32.0 * (1 - 1.0 / s);
  // The sample variance of 32768 counts has relative standard error ~ sqrt(2/32768) = 0.8%.
  EXPECT_NEAR(var / expected_var, 1.0, 0.05) << "variance " << var;
  const double total = static_cast<double>(chunks * d);
  EXPECT_NEAR(negatives / total, 0.5, 5 * 0.5 / std::sqrt(total));
}

TEST(Projection, JohnsonLindenstraussStatistics) {
  // Over many seeds, the inner-product error e = <Ax, Ay> - <x, y> must have mean 0 and the
  // variance this construction predicts exactly (derivation in docs/projection.md):
  //   Var = (s^2 / d) * ( sum_c m_c + 2 sum_{c!=c'} e_c e_c' + sum_{c!=c'} A_c B_c' - (sum_c e_c)^2
  //   )
  // with, per chunk c: e_c = <x_c, y_c>/s, A_c = |x_c|^2/s, B_c = |y_c|^2/s, m_c = sum x_i^2
  // y_i^2/s.
  const std::int64_t n = 2000, d = 256, seeds = 1000;
  const std::int64_t s = Projection({0, d, 0, Kind::kSparse}).region_size();
  std::vector<float> x = random_vector(n, 1234), y = random_vector(n, 5678);
  for (std::int64_t i = 0; i < n; ++i) y[i] = 0.6f * x[i] + 0.8f * y[i];  // correlated pair
  double ip = 0;
  for (std::int64_t i = 0; i < n; ++i) ip += static_cast<double>(x[i]) * y[i];
  const std::int64_t chunks = (n + s - 1) / s;
  std::vector<double> e(chunks, 0), ax(chunks, 0), by(chunks, 0), m(chunks, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = i / s;
    e[c] += double(x[i]) * y[i] / s;
    ax[c] += double(x[i]) * x[i] / s;
    by[c] += double(y[i]) * y[i] / s;
    m[c] += double(x[i]) * x[i] * y[i] * y[i] / s;
  }
  double se = 0, sa = 0, sb = 0, sm = 0, see = 0, sab = 0;
  for (std::int64_t c = 0; c < chunks; ++c) {
    se += e[c], sa += ax[c], sb += by[c], sm += m[c];
    see += e[c] * e[c], sab += ax[c] * by[c];
  }
  const double var_pq = sm + 2 * (se * se - see) + (sa * sb - sab) - se * se;
  const double theory = double(s) * s / d * var_pq;

  std::vector<float> xy(2 * n);
  std::copy(x.begin(), x.end(), xy.begin());
  std::copy(y.begin(), y.end(), xy.begin() + n);
  double sum = 0, sum2 = 0;
  for (std::int64_t k = 0; k < seeds; ++k) {
    const Projection p({static_cast<std::uint64_t>(1000 + k), d, 0, Kind::kSparse});
    const at::Tensor py = project(p, as_tensor(xy, 2, n)).to(at::kDouble);
    const double err = (py[0] * py[1]).sum().item<double>() - ip;
    sum += err;
    sum2 += err * err;
  }
  const double mean = sum / seeds;
  const double var = (sum2 - seeds * mean * mean) / (seeds - 1);
  // Mean: within 4.5 standard errors. Variance: the sample variance of 1000 near-Gaussian
  // errors has relative standard error ~ sqrt(2/999) = 4.5%; allow +-20% (4.4 sigma).
  EXPECT_NEAR(mean, 0.0, 4.5 * std::sqrt(theory / seeds)) << "theory var " << theory;
  EXPECT_NEAR(var / theory, 1.0, 0.2) << "sample var " << var << " theory " << theory;
  // For reference, a dense Gaussian JL map has variance (|x|^2|y|^2 + <x,y>^2) / d.
  double nx = 0, ny = 0;
  for (std::int64_t i = 0; i < n; ++i) nx += double(x[i]) * x[i], ny += double(y[i]) * y[i];
  const double gaussian = (nx * ny + ip * ip) / d;
  EXPECT_NEAR(theory / gaussian, 1.0, 0.1) << "sparse vs dense-Gaussian variance";
}

TEST(Projection, RejectsInvalidInputs) {
  EXPECT_THROW(Projection({0, 0, 0, Kind::kSparse}), Error);
  EXPECT_THROW(Projection({0, -5, 0, Kind::kSparse}), Error);
  EXPECT_THROW(Projection({0, std::int64_t{1} << 31, 0, Kind::kSparse}), Error);
  EXPECT_THROW(Projection({0, 64, 2, Kind::kDense}), Error);
  EXPECT_THROW(Projection({0, 64, -1, Kind::kSparse}), Error);
  EXPECT_THROW(parse_kind("gaussian"), Error);
  const Projection p({0, 64, 0, Kind::kSparse});
  at::Tensor out = at::zeros({2, 64});
  EXPECT_THROW(project_accumulate(p, at::zeros({2, 10}, at::kDouble), 0, out), Error);
  EXPECT_THROW(project_accumulate(p, at::zeros({3, 10}), 0, out), Error);
  EXPECT_THROW(project_accumulate(p, at::zeros({2, 10}), -1, out), Error);
  EXPECT_THROW(project_accumulate(p, at::zeros({10}), 0, out), Error);
  at::Tensor wrong = at::zeros({2, 63});
  EXPECT_THROW(project_accumulate(p, at::zeros({2, 10}), 0, wrong), Error);
  EXPECT_THROW(project_transpose(p, at::zeros({2, 65}), 0, 10), Error);
  EXPECT_THROW(project_transpose(p, at::zeros({2, 64}), 0, -1), Error);
}

TEST(Projection, EmptyInputsAreNoOps) {
  const Projection p({0, 64, 0, Kind::kSparse});
  at::Tensor out = at::ones({2, 64});
  project_accumulate(p, at::zeros({2, 0}), 5, out);
  EXPECT_TRUE(out.eq(1).all().item<bool>());
  EXPECT_EQ(project_transpose(p, at::zeros({2, 64}), 0, 0).numel(), 0);
}

TEST(Projection, LargeGlobalOffsetsUse64BitIndices) {
  // A slice placed beyond 2^32 must equal the materialised columns there.
  const Projection p({3, 128, 0, Kind::kSparse});
  const std::int64_t offset = (std::int64_t{1} << 33) + 5, len = 300;
  std::vector<float> x = random_vector(len, 3);
  const at::Tensor y = project(p, as_tensor(x, 1, len), offset);
  for (std::int64_t j = 0; j < 128; ++j) {
    double exact = 0;
    for (std::int64_t i = 0; i < len; ++i) exact += double(p.entry(j, offset + i)) * x[i];
    ASSERT_NEAR(y[0][j].item<float>(), exact, 1e-4) << "output " << j;
  }
}

}  // namespace
}  // namespace npeff::projection
