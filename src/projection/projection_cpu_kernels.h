// CPU projection kernels. See projection.h for the definition and the summation order.
//
// Forward (y += A x): rows are processed in groups of RB <= 8. The input is cut into tiles of
// whole chunks; each tile is copied once into an interleaved, pre-scaled, sign-doubled layout
//   xt[(i * 2 + negative) * RB + r] = +-(x[r][i] * scale)
// so that one picked entry for all RB rows is one contiguous RB-float load and a plain add (no
// gathers per row, no sign multiply). Threads own disjoint groups of outputs and walk the tile's
// chunks in ascending order, so every output's float sum is in global chunk order whatever the
// thread count, and streaming slices equals one call on the whole vector bit for bit.
//
// Transpose (A^T y): threads own disjoint chunks of the input space; within a chunk every
// entry sums its terms in ascending output order j (same order as the CUDA kernel).
//
// Included once per instruction set (projection_cpu_baseline.cpp, projection_cpu_avx2.cpp) into
// namespace cpu::NPEFF_CPU_ISA; projection_cpu.cpp picks one at run time. Vector width only
// changes how many rows advance together, never the order of any row's sum, so every variant
// gives the same bits (tested).
#ifndef NPEFF_CPU_ISA
#error "define NPEFF_CPU_ISA before including projection_cpu_kernels.h"
#endif
#include "projection/projection_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "npeff/core/error.h"
#include "projection/projection_hash.h"

namespace npeff::projection::cpu::NPEFF_CPU_ISA {
namespace {

using hash::chunk_key;
using hash::pair_hash;
using hash::pick_index;

// Bytes of interleaved input per tile (2 signs x RB rows x 4 bytes per entry): about half of a
// core's L2, so the random picks of a tile hit L2 (measured: 256 KiB-1 MiB perform alike here).
constexpr std::int64_t kTileBytes = 512 * 1024;
constexpr int kOutGroup = 16;  // outputs advanced together (hash vectorisation, ILP)

std::vector<std::uint32_t> output_keys(const Projection& p) {
  std::vector<std::uint32_t> keys(static_cast<std::size_t>(p.dim()));
  const std::uint32_t out_seed = hash::out_seed_key(p.seed());
  for (std::int64_t j = 0; j < p.dim(); ++j) keys[j] = hash::out_key(out_seed, j);
  return keys;
}

// Slow, general path for chunks that are only partly inside [offset, offset+len).
void forward_partial_chunk(const Projection& p, const std::vector<std::uint32_t>& okeys,
                           std::int64_t c, const float* x, std::int64_t rows, std::int64_t len,
                           std::int64_t ldx, std::int64_t offset, float* out, std::int64_t ldo) {
  const auto s = static_cast<std::uint32_t>(p.region_size());
  const std::uint64_t ck = chunk_key(hash::chunk_seed_key(p.seed()), c);
  const auto lo = static_cast<std::uint32_t>(ck), hi = static_cast<std::uint32_t>(ck >> 32);
  const float scale = p.scale();
  at::parallel_for(0, p.dim(), 1024, [&](std::int64_t j0, std::int64_t j1) {
    for (std::int64_t j = j0; j < j1; ++j) {
      const std::uint32_t h = pair_hash(okeys[j], lo, hi);
      const std::int64_t g = c * p.region_size() + pick_index(h, s);
      if (g < offset || g >= offset + len) continue;
      for (std::int64_t r = 0; r < rows; ++r) {
        const float v = x[r * ldx + (g - offset)] * scale;
        out[r * ldo + j] += hash::pick_negative(h) ? -v : v;
      }
    }
  });
}

// Interleaves rows [0, RB) of input entries [e0, e0 + count) (local indices) into xt.
template <int RB>
void interleave_tile(const float* x, std::int64_t ldx, std::int64_t e0, std::int64_t count,
                     float scale, float* xt) {
  at::parallel_for(0, count, 2048, [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      float* dst = xt + i * 2 * RB;
      for (int r = 0; r < RB; ++r) {
        const float v = x[r * ldx + e0 + i] * scale;
        dst[r] = v;
        dst[RB + r] = -v;
      }
    }
  });
}

// RB floats handled as one value: a GCC/Clang vector for RB > 1, so that one picked entry of
// all RB rows is a single vector load and add. (Left to itself the compiler vectorises across
// outputs instead, which turns every pick into a slow gather.) Element-wise vector adds round
// exactly like scalar ones, so results do not depend on RB.
template <int RB>
struct RowVector {
  typedef float type __attribute__((vector_size(RB * sizeof(float))));
};
template <>
struct RowVector<1> {
  using type = float;
};

template <int RB>
inline typename RowVector<RB>::type load_rows(const float* src) {
  typename RowVector<RB>::type v;
  std::memcpy(&v, src, sizeof(v));
  return v;
}
template <int RB>
inline void store_rows(float* dst, typename RowVector<RB>::type v) {
  std::memcpy(dst, &v, sizeof(v));
}

// Adds the contributions of tile chunks [0, chunks) to outputs [j0, j0 + J).
template <int RB, int J>
inline void forward_tile_group(const float* xt, std::int64_t chunks, std::uint32_t s,
                               const std::uint32_t* ck_lo, const std::uint32_t* ck_hi,
                               const std::uint32_t* okeys, float* out, std::int64_t ldo) {
  using V = typename RowVector<RB>::type;
  V acc[J];
  for (int jj = 0; jj < J; ++jj) {
    float column[RB];
    for (int r = 0; r < RB; ++r) column[r] = out[r * ldo + jj];
    acc[jj] = load_rows<RB>(column);
  }
  std::uint32_t okey[J];
  for (int jj = 0; jj < J; ++jj) okey[jj] = okeys[jj];
  for (std::int64_t t = 0; t < chunks; ++t) {
    const std::uint32_t lo = ck_lo[t], hi = ck_hi[t];
    // Hash and slot offsets for J outputs at once (vectorised), then one load+add per output.
    std::uint32_t slot[J];
    for (int jj = 0; jj < J; ++jj) {
      const std::uint32_t h = pair_hash(okey[jj], lo, hi);
      slot[jj] = (pick_index(h, s) * 2 + hash::pick_negative(h)) * RB;
    }
    const float* base = xt + t * static_cast<std::int64_t>(s) * 2 * RB;
    for (int jj = 0; jj < J; ++jj) acc[jj] += load_rows<RB>(base + slot[jj]);
  }
  for (int jj = 0; jj < J; ++jj) {
    float column[RB];
    store_rows<RB>(column, acc[jj]);
    for (int r = 0; r < RB; ++r) out[r * ldo + jj] = column[r];
  }
}

template <int RB>
void forward_full_chunks(const Projection& p, const std::vector<std::uint32_t>& okeys,
                         std::int64_t c_first, std::int64_t c_end, const float* x, std::int64_t ldx,
                         std::int64_t offset, float* out, std::int64_t ldo) {
  const std::int64_t s = p.region_size();
  const std::int64_t d = p.dim();
  const std::int64_t tile_chunks = std::max<std::int64_t>(1, kTileBytes / (8 * RB) / s);
  const std::uint64_t chunk_seed = hash::chunk_seed_key(p.seed());
  std::vector<float> xt(static_cast<std::size_t>(tile_chunks * s * 2 * RB));
  std::vector<std::uint32_t> ck_lo(tile_chunks), ck_hi(tile_chunks);
  const std::int64_t groups = (d + kOutGroup - 1) / kOutGroup;
  for (std::int64_t c0 = c_first; c0 < c_end; c0 += tile_chunks) {
    const std::int64_t chunks = std::min(tile_chunks, c_end - c0);
    interleave_tile<RB>(x, ldx, c0 * s - offset, chunks * s, p.scale(), xt.data());
    for (std::int64_t t = 0; t < chunks; ++t) {
      const std::uint64_t ck = chunk_key(chunk_seed, static_cast<std::uint64_t>(c0 + t));
      ck_lo[t] = static_cast<std::uint32_t>(ck);
      ck_hi[t] = static_cast<std::uint32_t>(ck >> 32);
    }
    at::parallel_for(0, groups, 4, [&](std::int64_t g0, std::int64_t g1) {
      for (std::int64_t g = g0; g < g1; ++g) {
        const std::int64_t j0 = g * kOutGroup;
        if (j0 + kOutGroup <= d) {
          forward_tile_group<RB, kOutGroup>(xt.data(), chunks, static_cast<std::uint32_t>(s),
                                            ck_lo.data(), ck_hi.data(), okeys.data() + j0, out + j0,
                                            ldo);
        } else {
          for (std::int64_t j = j0; j < d; ++j)
            forward_tile_group<RB, 1>(xt.data(), chunks, static_cast<std::uint32_t>(s),
                                      ck_lo.data(), ck_hi.data(), okeys.data() + j, out + j, ldo);
        }
      }
    });
  }
}

template <int RB>
void forward_rows(const Projection& p, const std::vector<std::uint32_t>& okeys, const float* x,
                  std::int64_t len, std::int64_t ldx, std::int64_t offset, float* out,
                  std::int64_t ldo) {
  const std::int64_t s = p.region_size();
  const std::int64_t c_begin = offset / s;
  const std::int64_t c_end = (offset + len + s - 1) / s;
  const std::int64_t full_begin = (offset + s - 1) / s;  // first chunk wholly inside the slice
  const std::int64_t full_end = (offset + len) / s;      // one past the last such chunk
  if (full_begin >= full_end) {
    for (std::int64_t c = c_begin; c < c_end; ++c)
      forward_partial_chunk(p, okeys, c, x, RB, len, ldx, offset, out, ldo);
    return;
  }
  // Ascending chunk order: leading partial chunk, whole chunks, trailing partial chunk.
  for (std::int64_t c = c_begin; c < full_begin; ++c)
    forward_partial_chunk(p, okeys, c, x, RB, len, ldx, offset, out, ldo);
  forward_full_chunks<RB>(p, okeys, full_begin, full_end, x, ldx, offset, out, ldo);
  for (std::int64_t c = full_end; c < c_end; ++c)
    forward_partial_chunk(p, okeys, c, x, RB, len, ldx, offset, out, ldo);
}

// Splits `rows` into groups of 8, 4, 2, 1 and calls fn.template operator()<RB>(first_row).
template <typename Fn>
void for_row_groups(std::int64_t rows, Fn&& fn) {
  std::int64_t r = 0;
  for (; r + 8 <= rows; r += 8) fn(std::integral_constant<int, 8>{}, r);
  if (r + 4 <= rows) fn(std::integral_constant<int, 4>{}, r), r += 4;
  if (r + 2 <= rows) fn(std::integral_constant<int, 2>{}, r), r += 2;
  if (r + 1 <= rows) fn(std::integral_constant<int, 1>{}, r), r += 1;
  NPEFF_ASSERT(r == rows, "row grouping");
}

template <int RB>
void transpose_rows(const Projection& p, const std::vector<std::uint32_t>& okeys, const float* y,
                    std::int64_t ldy, std::int64_t offset, std::int64_t len, float* out,
                    std::int64_t ldo) {
  const std::int64_t s = p.region_size();
  const std::int64_t d = p.dim();
  const float scale = p.scale();
  // yt[(j * 2 + negative) * RB + r] = +-(y[r][j] * scale)
  std::vector<float> yt(static_cast<std::size_t>(d * 2 * RB));
  for (std::int64_t j = 0; j < d; ++j)
    for (int r = 0; r < RB; ++r) {
      const float v = y[r * ldy + j] * scale;
      yt[(j * 2) * RB + r] = v;
      yt[(j * 2 + 1) * RB + r] = -v;
    }
  const std::uint64_t chunk_seed = hash::chunk_seed_key(p.seed());
  const std::int64_t c_begin = offset / s;
  const std::int64_t c_end = (offset + len + s - 1) / s;
  const auto su = static_cast<std::uint32_t>(s);
  at::parallel_for(
      c_begin, c_end, std::max<std::int64_t>(1, 4096 / s), [&](std::int64_t ca, std::int64_t cb) {
        std::vector<float> buf(static_cast<std::size_t>(s * RB));
        for (std::int64_t c = ca; c < cb; ++c) {
          std::fill(buf.begin(), buf.end(), 0.0f);
          const std::uint64_t ck = chunk_key(chunk_seed, static_cast<std::uint64_t>(c));
          const auto lo = static_cast<std::uint32_t>(ck), hi = static_cast<std::uint32_t>(ck >> 32);
          std::int64_t j = 0;
          for (; j + kOutGroup <= d; j += kOutGroup) {
            std::uint32_t h[kOutGroup];
            for (int jj = 0; jj < kOutGroup; ++jj) h[jj] = pair_hash(okeys[j + jj], lo, hi);
            for (int jj = 0; jj < kOutGroup; ++jj) {
              float* dst = buf.data() + static_cast<std::int64_t>(pick_index(h[jj], su)) * RB;
              const float* src = yt.data() + ((j + jj) * 2 + hash::pick_negative(h[jj])) * RB;
              store_rows<RB>(dst, load_rows<RB>(dst) + load_rows<RB>(src));
            }
          }
          for (; j < d; ++j) {
            const std::uint32_t h = pair_hash(okeys[j], lo, hi);
            float* dst = buf.data() + static_cast<std::int64_t>(pick_index(h, su)) * RB;
            const float* src = yt.data() + (j * 2 + hash::pick_negative(h)) * RB;
            for (int r = 0; r < RB; ++r) dst[r] += src[r];
          }
          const std::int64_t g0 = std::max(c * s, offset);
          const std::int64_t g1 = std::min((c + 1) * s, offset + len);
          for (std::int64_t g = g0; g < g1; ++g)
            for (int r = 0; r < RB; ++r) out[r * ldo + (g - offset)] = buf[(g - c * s) * RB + r];
        }
      });
}

}  // namespace

void project_accumulate(const Projection& p, const float* x, std::int64_t rows, std::int64_t len,
                        std::int64_t ldx, std::int64_t offset, float* out, std::int64_t ldo) {
  if (rows == 0 || len == 0) return;
  const std::vector<std::uint32_t> okeys = output_keys(p);
  for_row_groups(rows, [&](auto rb, std::int64_t r0) {
    forward_rows<decltype(rb)::value>(p, okeys, x + r0 * ldx, len, ldx, offset, out + r0 * ldo,
                                      ldo);
  });
}

void project_transpose(const Projection& p, const float* y, std::int64_t rows, std::int64_t ldy,
                       std::int64_t offset, std::int64_t len, float* out, std::int64_t ldo) {
  if (rows == 0 || len == 0) return;
  const std::vector<std::uint32_t> okeys = output_keys(p);
  for_row_groups(rows, [&](auto rb, std::int64_t r0) {
    transpose_rows<decltype(rb)::value>(p, okeys, y + r0 * ldy, ldy, offset, len, out + r0 * ldo,
                                        ldo);
  });
}

}  // namespace npeff::projection::cpu::NPEFF_CPU_ISA
