// The sparse random projection of the paper (Section 2.2.1, Appendix A), as an exact, seeded,
// device-independent linear map A: R^n -> R^d (we write y = A x; the paper's A is our A^T).
//
// Definition (docs/projection.md has the bit-level generator):
//  - region size s (default max(1, floor(d / 32)), so each input entry lands in ~32 outputs, or
//    d / s >= 32 of them on average when d is not a multiple of 32);
//  - the input index space is cut into chunks c = [c*s, (c+1)*s); for every output j and chunk c
//    one entry of the chunk is picked uniformly and given a random sign;
//  - A[j, i] = sign * sqrt(s / d) at the picked entries, 0 elsewhere, so E[<Ax, Ay>] = <x, y>;
//  - the index space is unbounded: the vector is treated as zero-padded to a whole number of
//    chunks, so a pick that falls past the end of the vector selects a zero. This keeps every
//    entry's expected contribution equal, including in the last, partial chunk, and makes A's
//    entries independent of n;
//  - kind "dense" is s = 1: a dense Rademacher matrix with entries +-1/sqrt(d) (the paper used
//    dense projections for d <= 1024).
// Entries are a pure function of (seed, global input index, output index), 64-bit indices.
//
// Float summation order (fixed, so results are reproducible):
//  - project (CPU): each output accumulates, in float32 and starting from the value already in
//    `out`, the terms (x_i * scale) * sign in ascending global chunk order. Streaming a vector
//    slice by slice in order therefore gives bit-for-bit the result of one call on the whole
//    vector, at any thread count.
//  - project (CUDA): terms are summed per segment of consecutive chunks, then segments are added
//    to `out` in ascending order: deterministic, but not bit-identical to the CPU.
//  - project_transpose (CPU and CUDA): each input-space entry sums its terms (y_j * scale) *
//    sign in ascending output order j, starting from 0: bit-identical on CPU and CUDA.
#pragma once

#include <cstdint>
#include <string>

namespace at {
class Tensor;
}

namespace npeff::projection {

enum class Kind { kSparse, kDense };
std::string to_string(Kind kind);
Kind parse_kind(const std::string& text);  // "sparse" | "dense"; throws npeff::Error otherwise

/// What the user chooses. Defaults match the paper's sparse projection.
struct ProjectionOptions {
  std::uint64_t seed = 0;
  std::int64_t dim = 0;          ///< d, the projected dimension (> 0).
  std::int64_t region_size = 0;  ///< s; 0 = automatic (sparse: max(1, d/32); dense: 1).
  Kind kind = Kind::kSparse;
};

/// A validated, fully resolved projection. Cheap to copy.
class Projection {
 public:
  /// Validates `options` (d > 0, d < 2^31, 1 <= s; dense requires s = 1) and resolves s.
  explicit Projection(const ProjectionOptions& options);

  std::uint64_t seed() const { return seed_; }
  std::int64_t dim() const { return dim_; }
  std::int64_t region_size() const { return region_size_; }
  Kind kind() const { return kind_; }
  /// sqrt(s / d) rounded to float: the magnitude of every nonzero entry.
  float scale() const { return scale_; }
  /// Identifier of the generator (stored in files so readers can refuse a different one).
  static const char* generator() { return "npeff-hash32x2-v1"; }

  /// The input index that output `j` picks in chunk `c`, and whether the entry is negative.
  struct Pick {
    std::int64_t index;
    bool negative;
  };
  Pick pick(std::int64_t chunk, std::int64_t j) const;
  /// A[j, i] (float): +-scale() or 0. For tests and small materialisations only.
  float entry(std::int64_t j, std::int64_t i) const;

 private:
  std::uint64_t seed_;
  std::int64_t dim_;
  std::int64_t region_size_;
  Kind kind_;
  float scale_;
};

/// out[r, :] += A x[r, :] where x holds input entries [offset, offset + x.size(1)) of the global
/// vector. x: float32 [rows, len] (any strides), out: float32 [rows, d], contiguous, same device.
/// Calling it for consecutive slices accumulates the projection of the whole vector.
void project_accumulate(const Projection& projection, const at::Tensor& x, std::int64_t offset,
                        at::Tensor& out);
/// Returns A x for x: [rows, len] holding global entries [offset, offset + len); float32 [rows, d].
at::Tensor project(const Projection& projection, const at::Tensor& x, std::int64_t offset = 0);

/// out[r, :] = (A^T y[r, :]) restricted to global input entries [offset, offset + out.size(1)).
/// y: float32 [rows, d]; out: float32 [rows, len], contiguous, same device (overwritten).
void project_transpose_into(const Projection& projection, const at::Tensor& y, std::int64_t offset,
                            at::Tensor& out);
/// Returns A^T y restricted to entries [offset, offset + length): float32 [rows, length].
at::Tensor project_transpose(const Projection& projection, const at::Tensor& y, std::int64_t offset,
                             std::int64_t length);

}  // namespace npeff::projection
