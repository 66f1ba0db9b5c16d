// The definition of npeff's sparse random projection entries (docs/projection.md,
// generator "npeff-hash32x2-v1"). Shared verbatim by the CPU code and the CUDA kernels, so the
// projection matrix is bit-identical on every device: it is a pure function of
// (seed, chunk index, output index) and never depends on batching, threads or GPU model.
//
// Paper, Appendix A: for output j and input chunk c (s consecutive input entries starting at
// global index c*s) exactly one entry of the chunk is chosen uniformly and given a random sign.
//
//   K_out       = lo32(mix64(seed ^ 0x6a09e667f3bcc908))
//   K_chunk     = mix64(seed ^ 0xbb67ae8584caa73b)
//   out_key(j)  = mix32(uint32(j) ^ K_out)                      bijective in j  (j < 2^32)
//   chunk_key(c)= mix64(K_chunk + c * 0x9e3779b97f4a7c15)        bijective in c  (64-bit c)
//   h(c, j)     = mix32(mix32(out_key(j) ^ lo32(chunk_key(c))) ^ hi32(chunk_key(c)))
//   index(c, j) = (uint64(h) * s) >> 32                          uniform in [0, s)
//   sign(c, j)  = (h & 1) ? -1 : +1
//
// For a fixed chunk, j -> h(c, j) is a bijection, so no two outputs share their random stream.
// mix32 is C. Wellons' "lowbias32", mix64 the SplitMix64 finalizer; both are bijections.
#pragma once

#include <cstdint>

#ifndef NPEFF_HD
#define NPEFF_HD
#endif

namespace npeff::projection::hash {

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
constexpr std::uint64_t kOutSalt = 0x6a09e667f3bcc908ULL;
constexpr std::uint64_t kChunkSalt = 0xbb67ae8584caa73bULL;

NPEFF_HD inline std::uint32_t mix32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

NPEFF_HD inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

NPEFF_HD inline std::uint32_t out_seed_key(std::uint64_t seed) {
  return static_cast<std::uint32_t>(mix64(seed ^ kOutSalt));
}
NPEFF_HD inline std::uint64_t chunk_seed_key(std::uint64_t seed) {
  return mix64(seed ^ kChunkSalt);
}

NPEFF_HD inline std::uint32_t out_key(std::uint32_t out_seed, std::uint64_t j) {
  return mix32(static_cast<std::uint32_t>(j) ^ out_seed);
}
NPEFF_HD inline std::uint64_t chunk_key(std::uint64_t chunk_seed, std::uint64_t c) {
  return mix64(chunk_seed + c * kGolden);
}

NPEFF_HD inline std::uint32_t pair_hash(std::uint32_t okey, std::uint32_t ckey_lo,
                                        std::uint32_t ckey_hi) {
  return mix32(mix32(okey ^ ckey_lo) ^ ckey_hi);
}

/// Position inside the chunk, uniform in [0, s) (Lemire's multiply-shift; exact for power-of-two s,
/// bias below s / 2^32 otherwise).
NPEFF_HD inline std::uint32_t pick_index(std::uint32_t h, std::uint32_t s) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(h) * s) >> 32);
}
/// 1 when the entry is negative.
NPEFF_HD inline std::uint32_t pick_negative(std::uint32_t h) {
  return h & 1U;
}

}  // namespace npeff::projection::hash
