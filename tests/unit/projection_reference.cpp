#include "unit/projection_reference.h"

#include <cmath>

namespace npeff::testing {
namespace {

// From docs/projection.md: lowbias32 and the SplitMix64 finalizer.
std::uint32_t lowbias32(std::uint32_t v) {
  v ^= v >> 16;
  v *= 0x7feb352dU;
  v ^= v >> 15;
  v *= 0x846ca68bU;
  v ^= v >> 16;
  return v;
}
std::uint64_t splitmix_finalizer(std::uint64_t v) {
  v ^= v >> 30;
  v *= 0xbf58476d1ce4e5b9ULL;
  v ^= v >> 27;
  v *= 0x94d049bb133111ebULL;
  v ^= v >> 31;
  return v;
}

}  // namespace

double ReferenceProjection::scale() const {
  return static_cast<double>(static_cast<float>(std::sqrt(static_cast<double>(s) / d)));
}

std::pair<std::int64_t, int> ReferenceProjection::pick(std::int64_t c, std::int64_t j) const {
  const std::uint32_t k_out =
      static_cast<std::uint32_t>(splitmix_finalizer(seed ^ 0x6a09e667f3bcc908ULL) & 0xffffffffU);
  const std::uint64_t k_chunk = splitmix_finalizer(seed ^ 0xbb67ae8584caa73bULL);
  const std::uint32_t out_key = lowbias32(static_cast<std::uint32_t>(j) ^ k_out);
  const std::uint64_t chunk_key =
      splitmix_finalizer(k_chunk + static_cast<std::uint64_t>(c) * 0x9e3779b97f4a7c15ULL);
  const std::uint32_t lo = static_cast<std::uint32_t>(chunk_key & 0xffffffffU);
  const std::uint32_t hi = static_cast<std::uint32_t>(chunk_key >> 32);
  const std::uint32_t h = lowbias32(lowbias32(out_key ^ lo) ^ hi);
  const std::uint64_t position =
      (static_cast<std::uint64_t>(h) * static_cast<std::uint64_t>(s)) >> 32;
  return {c * s + static_cast<std::int64_t>(position), (h & 1U) ? -1 : 1};
}

std::vector<double> ReferenceProjection::materialise(std::int64_t n) const {
  std::vector<double> a(static_cast<std::size_t>(d * n), 0.0);
  const std::int64_t chunks = (n + s - 1) / s;  // the last chunk may be partial: zero padding
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t c = 0; c < chunks; ++c) {
      const auto [i, sign] = pick(c, j);
      if (i < n) a[j * n + i] = sign * scale();
    }
  return a;
}

void reference_apply(const std::vector<double>& a, std::int64_t d, std::int64_t n,
                     const std::vector<float>& x, std::int64_t rows, std::vector<double>& y,
                     std::vector<double>& abs_sum) {
  y.assign(static_cast<std::size_t>(rows * d), 0.0);
  abs_sum.assign(static_cast<std::size_t>(rows * d), 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < d; ++j) {
      double acc = 0, mag = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const double t = a[j * n + i] * x[r * n + i];
        acc += t;
        mag += std::fabs(t);
      }
      y[r * d + j] = acc;
      abs_sum[r * d + j] = mag;
    }
}

}  // namespace npeff::testing
