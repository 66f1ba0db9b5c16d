// Out-of-core PEFs: a decomposition::PefSource that streams blocks of examples from PEF files
// on every pass instead of holding them in memory (for data sets larger than RAM/GPU memory).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#include "npeff/decomposition/decomposition.h"
#include "npeff/io/pef_file.h"

namespace npeff::io {

class FilePefSource : public decomposition::PefSource {
 public:
  /// Examples [first, first + count) of `files` (compatible), read `block_examples` at a time.
  /// A first pass computes each example's norm ||G^T G||_F (blocks are normalised on read)
  /// and finds non-finite and all-zero PEFs.
  FilePefSource(std::vector<PefFileInfo> files, std::int64_t first, std::int64_t count,
                c10::Device device, std::int64_t block_examples);

  std::int64_t examples() const override { return count_; }
  std::int64_t rank() const override { return files_.front().rank; }
  std::int64_t dim() const override { return files_.front().dim; }
  c10::Device device() const override { return device_; }
  at::Tensor block(std::int64_t first, std::int64_t count) override;

  const at::Tensor& example_ids() const { return ids_; }      ///< int64 [count]
  const at::Tensor& nonfinite() const { return nonfinite_; }  ///< bool [count]
  const at::Tensor& zero() const { return zero_; }            ///< bool [count]

 private:
  std::vector<PefFileInfo> files_;
  std::int64_t first_, count_;
  c10::Device device_;
  at::Tensor scale_;  // float32 [count]: 1 / sqrt(||G^T G||_F), 0 for zero PEFs
  at::Tensor ids_, nonfinite_, zero_;
};

}  // namespace npeff::io
