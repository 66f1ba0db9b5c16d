#include "npeff/io/pef_source.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "npeff/core/error.h"

namespace npeff::io {

FilePefSource::FilePefSource(std::vector<PefFileInfo> files, std::int64_t first, std::int64_t count,
                             c10::Device device, std::int64_t block_examples)
    : files_(std::move(files)), first_(first), count_(count), device_(device) {
  check_compatible(files_);
  NPEFF_CHECK(block_examples > 0, "block size must be positive for out-of-core PEFs");
  open_ = open_pef_files(files_);  // read_pef_rows checks the range on the first read
  const std::int64_t r = rank(), d = dim();
  scale_ = at::zeros({count}, at::kFloat);
  ids_ = at::empty({count}, at::kLong);
  nonfinite_ = at::zeros({count}, at::kBool);
  zero_ = at::zeros({count}, at::kBool);
  at::Tensor g = at::empty({std::min(block_examples, count), r, d}, at::kFloat);
  for (std::int64_t b0 = 0; b0 < count; b0 += block_examples) {
    const std::int64_t k = std::min(block_examples, count - b0);
    at::Tensor block = g.narrow(0, 0, k);
    at::Tensor ids = ids_.narrow(0, b0, k);
    read(b0, k, block, &ids);
    const at::Tensor flat = block.flatten(1);
    const at::Tensor bad = (~at::isfinite(flat)).any(1);
    nonfinite_.narrow(0, b0, k).copy_(bad);
    zero_.narrow(0, b0, k).copy_((flat == 0).all(1) & ~bad);
    const at::Tensor norms =
        at::bmm(block, block.transpose(1, 2)).to(at::kDouble).square().sum({1, 2}).sqrt();
    const at::Tensor scale = at::where(norms > 0, norms.rsqrt(), at::zeros_like(norms));
    scale_.narrow(0, b0, k).copy_(scale);
    // What the Decomposer would sum over the normalised blocks.
    if (!bad.any().item<bool>())
      sq_norm_sum_ +=
          decomposition::pef_sq_norm_sum(block.mul_(scale.to(at::kFloat).view({-1, 1, 1})));
  }
}

FilePefSource::~FilePefSource() {
  if (pending_.valid()) pending_.wait();
}

void FilePefSource::read(std::int64_t first, std::int64_t count, at::Tensor& out,
                         at::Tensor* ids) const {
  read_pef_rows(open_, first_ + first, count, rank(), dim(), out.data_ptr<float>(),
                ids != nullptr ? ids->data_ptr<std::int64_t>() : nullptr, nullptr);
}

at::Tensor FilePefSource::host_block(std::int64_t first, std::int64_t count) const {
  at::Tensor g = at::empty({count, rank(), dim()},
                           at::TensorOptions().dtype(at::kFloat).pinned_memory(device_.is_cuda()));
  read(first, count, g, nullptr);
  return g.mul_(scale_.narrow(0, first, count).view({-1, 1, 1}));
}

at::Tensor FilePefSource::block(std::int64_t first, std::int64_t count) {
  NPEFF_ASSERT(first >= 0 && first + count <= count_, "block outside the source");
  at::Tensor host;
  if (pending_.valid()) {
    at::Tensor ready = pending_.get();  // rethrows a read error
    if (pending_first_ == first && pending_count_ == count) host = ready;
  }
  if (!host.defined()) host = host_block(first, count);
  // Read the next block of this pass while the caller computes on this one.
  const std::int64_t next = first + count;
  if (next < count_) {
    pending_first_ = next;
    pending_count_ = std::min(count, count_ - next);
    pending_ = std::async(std::launch::async,
                          [this, next, n = pending_count_] { return host_block(next, n); });
  }
  // From pinned memory the copy is asynchronous; the caching host allocator keeps the buffer
  // until it is done.
  return device_.is_cuda() ? host.to(device_, /*non_blocking=*/true) : host;
}

}  // namespace npeff::io
