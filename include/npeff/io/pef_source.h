// Out-of-core PEFs: a decomposition::PefSource that streams blocks of examples from PEF files
// on every pass instead of holding them in memory (for data sets larger than RAM/GPU memory).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <future>
#include <vector>

#include "npeff/decomposition/decomposition.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"

namespace npeff::io {

/// Examples [first, first + count) of `files` (compatible), read `block_examples` at a time.
/// The files are opened once. One setup pass reads every block to find each example's norm
/// ||G^T G||_F (blocks are normalised on read), the non-finite and all-zero PEFs and
/// sum_i ||G_i^T G_i||^2 of the normalised PEFs (known_sq_norm_sum: the Decomposer then needs
/// no pass of its own). Within a pass, the next block is read and normalised on a second thread
/// (into pinned memory when the device is CUDA, copied without blocking) while the caller
/// computes on the current one: host memory is two blocks, 2 x 4 r d x block_examples bytes
/// (up to twice that pinned: the caching host allocator rounds to powers of two and keeps them).
/// Nothing is read between passes, when the caller may write HDF5 files (the library is not
/// thread-safe). Throws npeff::Error on unreadable or incompatible files.
class FilePefSource : public decomposition::PefSource {
 public:
  FilePefSource(std::vector<PefFileInfo> files, std::int64_t first, std::int64_t count,
                c10::Device device, std::int64_t block_examples);
  ~FilePefSource() override;
  FilePefSource(const FilePefSource&) = delete;
  FilePefSource& operator=(const FilePefSource&) = delete;

  std::int64_t examples() const override { return count_; }
  std::int64_t rank() const override { return files_.front().rank; }
  std::int64_t dim() const override { return files_.front().dim; }
  c10::Device device() const override { return device_; }
  at::Tensor block(std::int64_t first, std::int64_t count) override;
  double known_sq_norm_sum() const override { return sq_norm_sum_; }

  const at::Tensor& example_ids() const { return ids_; }      ///< int64 [count]
  const at::Tensor& nonfinite() const { return nonfinite_; }  ///< bool [count]
  const at::Tensor& zero() const { return zero_; }            ///< bool [count]

 private:
  // Local examples [first, first + count) as stored: float32 [count, r, d] into `out` (host),
  // their ids into `ids` when given.
  void read(std::int64_t first, std::int64_t count, at::Tensor& out, at::Tensor* ids) const;
  // The normalised block on the host (pinned for a CUDA device).
  at::Tensor host_block(std::int64_t first, std::int64_t count) const;

  std::vector<PefFileInfo> files_;
  std::vector<OpenPefFile> open_;
  std::int64_t first_, count_;
  c10::Device device_;
  at::Tensor scale_;  // float32 [count]: 1 / sqrt(||G^T G||_F), 0 for zero PEFs
  at::Tensor ids_, nonfinite_, zero_;
  double sq_norm_sum_ = 0;
  std::future<at::Tensor> pending_;  // the next block, being read
  std::int64_t pending_first_ = -1, pending_count_ = 0;
};

}  // namespace npeff::io
