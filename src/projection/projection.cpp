// Validation and device dispatch for the projection ops (CPU: projection_cpu.cpp, CUDA:
// kernels/projection.cu).
#include "npeff/projection/projection.h"

#include <ATen/ATen.h>

#include <cmath>

#include "npeff/core/error.h"
#include "projection/projection_cpu.h"
#include "projection/projection_hash.h"

#ifdef NPEFF_WITH_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "projection_launch.h"
#endif

namespace npeff::projection {

std::string to_string(Kind kind) {
  return kind == Kind::kDense ? "dense" : "sparse";
}

Kind parse_kind(const std::string& text) {
  if (text == "sparse") return Kind::kSparse;
  if (text == "dense") return Kind::kDense;
  NPEFF_FAIL("unknown projection kind '", text, "': expected 'sparse' or 'dense'");
}

Projection::Projection(const ProjectionOptions& options)
    : seed_(options.seed), dim_(options.dim), kind_(options.kind) {
  NPEFF_CHECK(dim_ > 0, "projection dimension must be positive, got ", dim_);
  NPEFF_CHECK(dim_ < (std::int64_t{1} << 31), "projection dimension ", dim_,
              " is too large (must be < 2^31)");
  NPEFF_CHECK(options.region_size >= 0, "region size must be >= 0 (0 = automatic), got ",
              options.region_size);
  if (kind_ == Kind::kDense) {
    NPEFF_CHECK(options.region_size == 0 || options.region_size == 1,
                "a dense projection has region size 1, got ", options.region_size);
    region_size_ = 1;
  } else {
    region_size_ =
        options.region_size > 0 ? options.region_size : std::max<std::int64_t>(1, dim_ / 32);
  }
  NPEFF_CHECK(region_size_ < (std::int64_t{1} << 31), "region size ", region_size_,
              " is too large (must be < 2^31)");
  scale_ = static_cast<float>(std::sqrt(static_cast<double>(region_size_) / dim_));
}

Projection::Pick Projection::pick(std::int64_t chunk, std::int64_t j) const {
  NPEFF_ASSERT(chunk >= 0 && j >= 0 && j < dim_, "pick(", chunk, ", ", j, ") out of range");
  const std::uint32_t okey =
      hash::out_key(hash::out_seed_key(seed_), static_cast<std::uint64_t>(j));
  const std::uint64_t ck =
      hash::chunk_key(hash::chunk_seed_key(seed_), static_cast<std::uint64_t>(chunk));
  const std::uint32_t h =
      hash::pair_hash(okey, static_cast<std::uint32_t>(ck), static_cast<std::uint32_t>(ck >> 32));
  return {chunk * region_size_ + hash::pick_index(h, static_cast<std::uint32_t>(region_size_)),
          hash::pick_negative(h) != 0};
}

float Projection::entry(std::int64_t j, std::int64_t i) const {
  const Pick p = pick(i / region_size_, j);
  if (p.index != i) return 0.0f;
  return p.negative ? -scale_ : scale_;
}

namespace {

void check_float_matrix(const at::Tensor& t, const char* what) {
  NPEFF_CHECK(t.defined(), what, " is undefined");
  NPEFF_CHECK(t.dim() == 2, what, " must be a matrix [rows, columns], got ", t.dim(),
              " dimensions");
  NPEFF_CHECK(t.scalar_type() == at::kFloat, what, " must be float32, got ",
              c10::toString(t.scalar_type()));
}

void check_device_supported(const at::Tensor& t) {
  if (t.is_cpu()) return;
  NPEFF_CHECK(t.is_cuda(), "projection supports CPU and CUDA tensors, got device ",
              t.device().str());
#ifndef NPEFF_WITH_CUDA_KERNELS
  NPEFF_FAIL(
      "this npeff was built without CUDA kernels (CPU-only LibTorch or no nvcc at build time); "
      "rebuild against a CUDA LibTorch, or use --device cpu");
#endif
}

}  // namespace

void project_accumulate(const Projection& projection, const at::Tensor& x, std::int64_t offset,
                        at::Tensor& out) {
  check_float_matrix(x, "projection input");
  check_float_matrix(out, "projection output");
  NPEFF_CHECK(offset >= 0, "global offset must be >= 0, got ", offset);
  NPEFF_CHECK(x.size(0) == out.size(0), "input has ", x.size(0), " rows but output has ",
              out.size(0));
  NPEFF_CHECK(out.size(1) == projection.dim(), "output has ", out.size(1),
              " columns, expected the projection dimension ", projection.dim());
  NPEFF_CHECK(out.is_contiguous(), "projection output must be contiguous");
  NPEFF_CHECK(x.device() == out.device(), "input on ", x.device().str(), " but output on ",
              out.device().str());
  check_device_supported(x);
  const at::Tensor xc = x.stride(1) == 1 ? x : x.contiguous();
  const std::int64_t ldx = x.size(0) > 1 ? xc.stride(0) : xc.size(1);
  if (x.is_cpu()) {
    cpu::project_accumulate(projection, xc.data_ptr<float>(), xc.size(0), xc.size(1), ldx, offset,
                            out.data_ptr<float>(), out.size(1));
    return;
  }
#ifdef NPEFF_WITH_CUDA_KERNELS
  const c10::cuda::CUDAGuard guard(x.device());
  const kernels::ProjectionParams params{projection.seed(), projection.dim(),
                                         projection.region_size(), projection.scale()};
  const std::size_t bytes =
      kernels::project_workspace_bytes(params, xc.size(0), xc.size(1), offset);
  at::Tensor workspace =
      at::empty({static_cast<std::int64_t>(bytes / sizeof(float)) + 1}, out.options());
  kernels::project_accumulate_cuda(
      params, xc.data_ptr<float>(), xc.size(0), xc.size(1), ldx, offset, out.data_ptr<float>(),
      out.size(1), workspace.data_ptr<float>(), bytes, c10::cuda::getCurrentCUDAStream().stream());
#endif
}

at::Tensor project(const Projection& projection, const at::Tensor& x, std::int64_t offset) {
  check_float_matrix(x, "projection input");
  at::Tensor out = at::zeros({x.size(0), projection.dim()}, x.options());
  project_accumulate(projection, x, offset, out);
  return out;
}

void project_transpose_into(const Projection& projection, const at::Tensor& y, std::int64_t offset,
                            at::Tensor& out) {
  check_float_matrix(y, "transpose input");
  check_float_matrix(out, "transpose output");
  NPEFF_CHECK(offset >= 0, "global offset must be >= 0, got ", offset);
  NPEFF_CHECK(y.size(1) == projection.dim(), "transpose input has ", y.size(1),
              " columns, expected the projection dimension ", projection.dim());
  NPEFF_CHECK(y.size(0) == out.size(0), "transpose input has ", y.size(0), " rows but output has ",
              out.size(0));
  NPEFF_CHECK(out.is_contiguous(), "transpose output must be contiguous");
  NPEFF_CHECK(y.device() == out.device(), "input on ", y.device().str(), " but output on ",
              out.device().str());
  check_device_supported(y);
  const at::Tensor yc = y.contiguous();
  if (y.is_cpu()) {
    cpu::project_transpose(projection, yc.data_ptr<float>(), yc.size(0), yc.size(1), offset,
                           out.size(1), out.data_ptr<float>(), out.size(1));
    return;
  }
#ifdef NPEFF_WITH_CUDA_KERNELS
  const c10::cuda::CUDAGuard guard(y.device());
  const kernels::ProjectionParams params{projection.seed(), projection.dim(),
                                         projection.region_size(), projection.scale()};
  const std::size_t bytes =
      kernels::project_transpose_workspace_bytes(params, yc.size(0), out.size(1), offset);
  at::Tensor workspace =
      at::empty({static_cast<std::int64_t>(bytes / sizeof(float)) + 1}, out.options());
  kernels::project_transpose_cuda(params, yc.data_ptr<float>(), yc.size(0), yc.size(1), offset,
                                  out.size(1), out.data_ptr<float>(), out.size(1),
                                  workspace.data_ptr<float>(), bytes,
                                  c10::cuda::getCurrentCUDAStream().stream());
#endif
}

at::Tensor project_transpose(const Projection& projection, const at::Tensor& y, std::int64_t offset,
                             std::int64_t length) {
  check_float_matrix(y, "transpose input");
  NPEFF_CHECK(length >= 0, "length must be >= 0, got ", length);
  at::Tensor out = at::empty({y.size(0), length}, y.options());
  project_transpose_into(projection, y, offset, out);
  return out;
}

}  // namespace npeff::projection
