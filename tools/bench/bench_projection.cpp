// Benchmark of the CPU sparse random projection (y = A x, paper Appendix A).
//
// For n input entries, d in {4096, 16384} and rows in {1, 2, 8} it reports input elements per
// second and two ratios measured in the same run:
//   floor: the time to merely read the input once (a multithreaded sum; memory bandwidth);
//   table: the same projection computed from a materialised (index, sign) table of the same
//          matrix, 32 entries per input on average (the approach of peers such as sjlt), using
//          the same tiled, row-interleaved loop as ours, so the only difference is hashing
//          versus reading the table;
// plus hash-only: the time to generate every pick without touching the input (what the
// generator alone costs).
// Usage: bench_projection [n=50000000] [threads=0 (all cores)] [reps=2]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "npeff/core/runtime.h"
#include "npeff/projection/projection.h"
#include "projection/projection_cpu.h"
#include "projection/projection_hash.h"

namespace {

using npeff::projection::Projection;
namespace h = npeff::projection::hash;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename Fn>
double best_of(int reps, Fn&& fn) {
  double best = 1e300;
  for (int k = 0; k < reps; ++k) {
    const double t0 = now();
    fn();
    best = std::min(best, now() - t0);
  }
  return best;
}

// The memory floor: read rows*n floats once.
double read_floor(const float* x, std::int64_t count, int reps) {
  volatile float sink = 0;
  return best_of(reps, [&] {
    std::vector<float> part(static_cast<std::size_t>(at::get_num_threads()) * 16, 0.0f);
    at::parallel_for(0, count, 1 << 20, [&](std::int64_t a, std::int64_t b) {
      float acc[16] = {};
      std::int64_t i = a;
      for (; i + 16 <= b; i += 16)
        for (int k = 0; k < 16; ++k) acc[k] += x[i + k];
      for (; i < b; ++i) acc[0] += x[i];
      float s = 0;
      for (float v : acc) s += v;
      part[at::get_thread_num() * 16] += s;
    });
    float s = 0;
    for (float v : part) s += v;
    sink = s;
  });
}

// Materialised table of the same matrix: table[c * d + j] = pick index * 2 + negative.
std::vector<std::uint32_t> build_table(const Projection& p, std::int64_t chunks) {
  std::vector<std::uint32_t> table(static_cast<std::size_t>(chunks * p.dim()));
  const std::uint32_t out_seed = h::out_seed_key(p.seed());
  const std::uint64_t chunk_seed = h::chunk_seed_key(p.seed());
  const auto s = static_cast<std::uint32_t>(p.region_size());
  at::parallel_for(0, chunks, 64, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const std::uint64_t ck = h::chunk_key(chunk_seed, c);
      for (std::int64_t j = 0; j < p.dim(); ++j) {
        const std::uint32_t hv =
            h::pair_hash(h::out_key(out_seed, j), static_cast<std::uint32_t>(ck),
                         static_cast<std::uint32_t>(ck >> 32));
        table[c * p.dim() + j] = h::pick_index(hv, s) * 2 + h::pick_negative(hv);
      }
    }
  });
  return table;
}

// Same tiled, interleaved loop as src/projection/projection_cpu.cpp, reading picks from the table.
template <int RB>
void project_with_table(const Projection& p, const std::vector<std::uint32_t>& table,
                        const float* x, std::int64_t n, std::int64_t ldx, float* out) {
  const std::int64_t s = p.region_size(), d = p.dim();
  const std::int64_t tile_chunks = std::max<std::int64_t>(1, 8192 / s);
  const std::int64_t full = n / s;
  std::vector<float> xt(static_cast<std::size_t>(tile_chunks * s * 2 * RB));
  constexpr int J = 16;
  for (std::int64_t c0 = 0; c0 < full; c0 += tile_chunks) {
    const std::int64_t chunks = std::min(tile_chunks, full - c0);
    at::parallel_for(0, chunks * s, 2048, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i)
        for (int r = 0; r < RB; ++r) {
          const float v = x[r * ldx + c0 * s + i] * p.scale();
          xt[i * 2 * RB + r] = v;
          xt[i * 2 * RB + RB + r] = -v;
        }
    });
    at::parallel_for(0, d / J, 4, [&](std::int64_t g0, std::int64_t g1) {
      for (std::int64_t g = g0; g < g1; ++g) {
        float acc[J][RB];
        for (int jj = 0; jj < J; ++jj)
          for (int r = 0; r < RB; ++r) acc[jj][r] = out[r * d + g * J + jj];
        for (std::int64_t t = 0; t < chunks; ++t) {
          const std::uint32_t* row = table.data() + (c0 + t) * d + g * J;
          const float* base = xt.data() + t * s * 2 * RB;
          for (int jj = 0; jj < J; ++jj) {
            const float* src = base + static_cast<std::int64_t>(row[jj]) * RB;
            for (int r = 0; r < RB; ++r) acc[jj][r] += src[r];
          }
        }
        for (int jj = 0; jj < J; ++jj)
          for (int r = 0; r < RB; ++r) out[r * d + g * J + jj] = acc[jj][r];
      }
    });
  }
}

void table_dispatch(int rows, const Projection& p, const std::vector<std::uint32_t>& table,
                    const float* x, std::int64_t n, float* out) {
  for (int r = 0; r < rows;) {
    const int left = rows - r;
    if (left >= 8)
      project_with_table<8>(p, table, x + r * n, n, n, out + r * p.dim()), r += 8;
    else if (left >= 4)
      project_with_table<4>(p, table, x + r * n, n, n, out + r * p.dim()), r += 4;
    else if (left >= 2)
      project_with_table<2>(p, table, x + r * n, n, n, out + r * p.dim()), r += 2;
    else
      project_with_table<1>(p, table, x + r * n, n, n, out + r * p.dim()), r += 1;
  }
}

// Generates every (chunk, output) pick without touching the input.
double hash_only(const Projection& p, std::int64_t chunks, int reps) {
  volatile std::uint32_t sink = 0;
  const std::uint32_t out_seed = h::out_seed_key(p.seed());
  const std::uint64_t chunk_seed = h::chunk_seed_key(p.seed());
  std::vector<std::uint32_t> okeys(static_cast<std::size_t>(p.dim()));
  for (std::int64_t j = 0; j < p.dim(); ++j) okeys[j] = h::out_key(out_seed, j);
  const auto s = static_cast<std::uint32_t>(p.region_size());
  return best_of(reps, [&] {
    std::vector<std::uint32_t> part(static_cast<std::size_t>(at::get_num_threads()) * 16, 0);
    at::parallel_for(0, p.dim() / 16, 4, [&](std::int64_t g0, std::int64_t g1) {
      std::uint32_t acc[16] = {};
      for (std::int64_t c = 0; c < chunks; ++c) {
        const std::uint64_t ck = h::chunk_key(chunk_seed, c);
        const auto lo = static_cast<std::uint32_t>(ck), hi = static_cast<std::uint32_t>(ck >> 32);
        for (std::int64_t g = g0; g < g1; ++g)
          for (int jj = 0; jj < 16; ++jj)
            acc[jj] += h::pick_index(h::pair_hash(okeys[g * 16 + jj], lo, hi), s);
      }
      std::uint32_t t = 0;
      for (auto v : acc) t += v;
      part[at::get_thread_num() * 16] += t;
    });
    std::uint32_t t = 0;
    for (auto v : part) t += v;
    sink = t;
  });
}

}  // namespace

int main(int argc, char** argv) {
  // A whole number of chunks for every d tested, so the table version covers the same entries.
  const std::int64_t n = (argc > 1 ? std::atoll(argv[1]) : 50'000'000) / 512 * 512;
  npeff::set_num_threads(argc > 2 ? std::atoi(argv[2]) : 0);
  const int reps = argc > 3 ? std::atoi(argv[3]) : 2;
  const int max_rows = 8;
  std::printf("# bench_projection: n=%lld threads=%d reps=%d (best of reps)\n",
              static_cast<long long>(n), npeff::num_threads(), reps);
  std::vector<float> x(static_cast<std::size_t>(max_rows * n));
  {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto& v : x) v = u(rng);
  }
  std::printf("%6s %5s %10s %12s %10s %8s %10s %8s %10s %8s\n", "d", "rows", "ours_s", "elem/s",
              "floor_s", "x_floor", "table_s", "x_table", "hash_s", "hash%");
  for (const std::int64_t d : {4096, 16384}) {
    const Projection p({7, d, 0, npeff::projection::Kind::kSparse});
    const std::int64_t chunks = n / p.region_size();
    const std::vector<std::uint32_t> table = build_table(p, chunks);
    const double t_hash = hash_only(p, chunks, reps);
    for (const int rows : {1, 2, 8}) {
      std::vector<float> out(static_cast<std::size_t>(rows * d));
      const double t_ours = best_of(reps, [&] {
        std::fill(out.begin(), out.end(), 0.0f);
        npeff::projection::cpu::project_accumulate(p, x.data(), rows, n, n, 0, out.data(), d);
      });
      const std::vector<float> ours = out;
      const double t_floor = read_floor(x.data(), rows * n, reps);
      const double t_table = best_of(reps, [&] {
        std::fill(out.begin(), out.end(), 0.0f);
        table_dispatch(rows, p, table, x.data(), n, out.data());
      });
      // Same matrix, same order: the results must agree (the table path skips a partial tail).
      double max_diff = 0;
      for (std::size_t k = 0; k < out.size(); ++k)
        max_diff = std::max(max_diff, static_cast<double>(std::abs(out[k] - ours[k])));
      std::printf("%6lld %5d %10.3f %12.3e %10.3f %8.2f %10.3f %8.2f %10.3f %7.0f%%%s\n",
                  static_cast<long long>(d), rows, t_ours, rows * n / t_ours, t_floor,
                  t_ours / t_floor, t_table, t_ours / t_table, t_hash, 100 * t_hash / t_ours,
                  max_diff > 1e-3 ? "  (table result differs!)" : "");
      std::fflush(stdout);
    }
  }
  std::printf(
      "# x_floor = ours / memory floor (lower is better); x_table = ours / table version "
      "(< 1: ours is faster). Table memory: %.2f GB.\n",
      4.0 * 32 * n / 1e9);
  return 0;
}
