#include "npeff/io/pef_source.h"

#include <ATen/ATen.h>

#include "npeff/core/error.h"

namespace npeff::io {

FilePefSource::FilePefSource(std::vector<PefFileInfo> files, std::int64_t first, std::int64_t count,
                             c10::Device device, std::int64_t block_examples)
    : files_(std::move(files)), first_(first), count_(count), device_(device) {
  check_compatible(files_);
  NPEFF_CHECK(block_examples > 0, "block size must be positive for out-of-core PEFs");
  scale_ = at::zeros({count}, at::kFloat);
  ids_ = at::empty({count}, at::kLong);
  nonfinite_ = at::zeros({count}, at::kBool);
  zero_ = at::zeros({count}, at::kBool);
  for (std::int64_t b0 = 0; b0 < count; b0 += block_examples) {
    const std::int64_t k = std::min(block_examples, count - b0);
    const PefSet set = load_pefs(files_, first_ + b0, k);
    const at::Tensor flat = set.pefs.flatten(1);
    const at::Tensor bad = (~at::isfinite(flat)).any(1);
    nonfinite_.narrow(0, b0, k).copy_(bad);
    zero_.narrow(0, b0, k).copy_((flat == 0).all(1) & ~bad);
    const at::Tensor norms =
        at::bmm(set.pefs, set.pefs.transpose(1, 2)).to(at::kDouble).square().sum({1, 2}).sqrt();
    scale_.narrow(0, b0, k).copy_(at::where(norms > 0, norms.rsqrt(), at::zeros_like(norms)));
    ids_.narrow(0, b0, k).copy_(set.example_ids);
  }
}

at::Tensor FilePefSource::block(std::int64_t first, std::int64_t count) {
  NPEFF_ASSERT(first >= 0 && first + count <= count_, "block outside the source");
  at::Tensor g = load_pefs(files_, first_ + first, count).pefs;
  g.mul_(scale_.narrow(0, first, count).view({-1, 1, 1}));
  return g.to(device_);
}

}  // namespace npeff::io
