// An independent re-implementation of the projection's documented definition
// (docs/projection.md), written from the document rather than from src/projection, used to
// materialise the matrix in float64 for tests.
#pragma once

#include <cstdint>
#include <vector>

namespace npeff::testing {

struct ReferenceProjection {
  std::uint64_t seed;
  std::int64_t d;
  std::int64_t s;
  /// The scale as the document defines it: sqrt(s/d) rounded to float.
  double scale() const;
  /// (picked global index, sign) of output j in chunk c.
  std::pair<std::int64_t, int> pick(std::int64_t c, std::int64_t j) const;
  /// Dense A [d][n] (row j = output j), float64.
  std::vector<double> materialise(std::int64_t n) const;
};

/// y[r][j] = sum_i A[j][i] x[r][i] in float64; also returns sum_i |A[j][i] x[r][i]| per entry
/// (for rounding-error bounds).
void reference_apply(const std::vector<double>& a, std::int64_t d, std::int64_t n,
                     const std::vector<float>& x, std::int64_t rows, std::vector<double>& y,
                     std::vector<double>& abs_sum);

}  // namespace npeff::testing
