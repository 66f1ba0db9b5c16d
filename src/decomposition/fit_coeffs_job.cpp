// npeff fit-coeffs as one call (see include/npeff/decomposition/fit_coeffs_job.h).
#include "npeff/decomposition/fit_coeffs_job.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/pef_file.h"

namespace npeff::decomposition {

namespace {
constexpr double kTiny = 1e-30;  // as Decomposer's updates: 0 / 0 stays 0
}  // namespace

FitCoeffsResult run_fit_coeffs_job(const FitCoeffsJobOptions& o) {
  NPEFF_CHECK(o.steps >= 0, "--steps must be >= 0, got ", o.steps);
  NPEFF_CHECK(o.max_block_bytes >= 0, "--max-block-bytes must be >= 0 (0: automatic), got ",
              o.max_block_bytes);
  const c10::Device dev = select_device(o.device);
  const DecompositionData d = read_decomposition(o.decomposition, /*with_w=*/false);
  const std::vector<io::PefFileInfo> files = io::read_compatible_pef_infos(o.pefs);
  const io::PefFileInfo& f = files.front();
  NPEFF_CHECK(f.dim == d.h.size(1), f.path, " has PEF dimension ", f.dim, " but the components of ",
              o.decomposition, " have ", d.h.size(1));
  NPEFF_CHECK(f.has_projection == d.has_projection &&
                  (!f.has_projection || f.projection.same_as(d.projection)),
              f.path, " and ", o.decomposition, " come from different projections (",
              f.has_projection ? f.projection.describe() : "none", " vs ",
              d.has_projection ? d.projection.describe() : "none", ")");
  std::int64_t m = 0;
  for (const io::PefFileInfo& info : files) m += info.examples;
  NPEFF_CHECK(m > 0, "the PEF files hold no examples");
  const std::int64_t r = f.rank, n = f.dim, C = d.h.size(0);
  const std::int64_t budget =
      o.max_block_bytes > 0 ? o.max_block_bytes
                            : (dev.is_cuda() ? std::int64_t{1} << 30 : std::int64_t{128} << 20);
  const std::int64_t block = std::clamp<std::int64_t>(budget / (4 * r * n), 1, m);

  // H in float32 for the updates (as fit_coefficients), in float64 for the losses.
  const at::Tensor h = d.h.to(dev, at::kFloat);
  const at::Tensor m32 = at::mm(h, h.t()).square();
  const at::Tensor h64 = d.h.to(dev, at::kDouble);
  const at::Tensor m64 = at::mm(h64, h64.t()).square();
  const auto on_dev = [&](at::ScalarType t) { return at::TensorOptions().dtype(t).device(dev); };
  at::Tensor n32 = at::empty({m, C}, on_dev(at::kFloat));
  at::Tensor n64 = at::empty({m, C}, on_dev(at::kDouble));
  at::Tensor g_sq = at::empty({m}, on_dev(at::kDouble));
  FitCoeffsResult result;
  result.example_ids = at::empty({m}, at::kLong);

  const std::vector<io::OpenPefFile> open = io::open_pef_files(files);
  at::Tensor host = at::empty({block, r, n}, at::kFloat);
  Progress progress("fit-coeffs: reading", m, "examples");
  for (std::int64_t b0 = 0; b0 < m; b0 += block) {
    const std::int64_t k = std::min(block, m - b0);
    at::Tensor g_host = host.narrow(0, 0, k);
    io::read_pef_rows(open, b0, k, r, n, g_host.data_ptr<float>(),
                      result.example_ids.data_ptr<std::int64_t>() + b0, nullptr);
    at::Tensor g = g_host.to(dev);
    const at::Tensor bad = (~at::isfinite(g.flatten(1))).any(1).nonzero();
    NPEFF_CHECK(bad.numel() == 0, "example ",
                result.example_ids[b0 + bad[0][0].item<std::int64_t>()].item<std::int64_t>(),
                " (row ", b0 + bad[0][0].item<std::int64_t>(),
                " of the PEF files) has a non-finite PEF: fit-coeffs needs finite PEFs");
    normalize_pefs(g);
    // The same products as fit_coefficients' products(), block by block.
    n32.narrow(0, b0, k).copy_(
        at::mm(g.reshape({k * r, n}), h.t()).view({k, r, C}).square().sum(1));
    const LossTerms terms = example_loss_terms(g, h64);
    g_sq.narrow(0, b0, k).copy_(terms.g_sq);
    n64.narrow(0, b0, k).copy_(terms.n);
    ++result.blocks;
    progress.advance(k);
  }
  progress.finish();

  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  at::Tensor w = at::rand({m, C}, gen, at::kFloat).to(dev);
  result.example_loss = at::empty({m}, at::kDouble);
  // Rows are independent once N is known: all updates and the loss of one block of rows at a
  // time keep the temporaries (the update's product, the loss's float64 terms) to the block.
  const std::int64_t rows = std::clamp<std::int64_t>((std::int64_t{64} << 20) / (8 * C), 1, m);
  for (std::int64_t b0 = 0; b0 < m; b0 += rows) {
    const std::int64_t k = std::min(rows, m - b0);
    at::Tensor wb = w.narrow(0, b0, k);
    const at::Tensor nb = n32.narrow(0, b0, k);
    for (std::int64_t t = 0; t < o.steps; ++t) {
      const at::Tensor denominator = at::mm(wb, m32).clamp_min_(kTiny);
      wb.mul_(nb).div_(denominator);  // w * N / (w M): the order of fit_coefficients
    }
    const at::Tensor w64 = wb.to(at::kDouble);
    // Each term is a squared norm; rounding can leave tiny negatives for exact fits.
    result.example_loss.narrow(0, b0, k).copy_(
        example_losses_from_terms({g_sq.narrow(0, b0, k), n64.narrow(0, b0, k)}, w64, m64)
            .clamp_min(0.0));
  }
  result.w = w.cpu();
  log::info("fit-coeffs: ", m, " examples in ", result.blocks, " blocks of up to ", block, ", ",
            o.steps, " updates on ", dev.str());
  return result;
}

}  // namespace npeff::decomposition
