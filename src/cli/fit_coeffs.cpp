// npeff fit-coeffs: coefficients of new PEFs on the fixed components of a decomposition
// (paper Section 2.2: repeated coefficient updates), with per-example reconstruction loss
// (held-in vs held-out, paper Table 5).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/decomposition/decomposition.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/schema.h"

namespace npeff::cli {
namespace {

struct FitCoeffsOptions {
  std::string decomposition;      ///< npeff.decomposition file with the components (required)
  std::vector<std::string> pefs;  ///< PEF files to fit (required)
  std::string out;                ///< output npeff.coefficients file (required)
  std::int64_t steps = 1000;      ///< multiplicative coefficient updates
  std::uint64_t seed = 0;         ///< W initialisation seed (U[0, 1])
  bool json = false;
};

int run_fit_coeffs(const FitCoeffsOptions& o, const GlobalOptions& g) {
  const c10::Device dev = select_device(g.device);
  PathCheck inputs;
  inputs.file("--decomposition", o.decomposition);
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  const decomposition::DecompositionData d =
      decomposition::read_decomposition(o.decomposition, /*with_w=*/false);
  const std::vector<io::PefFileInfo> files = io::read_compatible_pef_infos(o.pefs);
  const io::PefFileInfo& f = files.front();
  NPEFF_CHECK(f.dim == d.h.size(1), f.path, " has PEF dimension ", f.dim, " but the components of ",
              o.decomposition, " have ", d.h.size(1));
  NPEFF_CHECK(f.has_projection == d.has_projection &&
                  (!f.has_projection || f.projection.same_as(d.projection)),
              f.path, " and ", o.decomposition, " come from different projections (",
              f.has_projection ? f.projection.describe() : "none", " vs ",
              d.has_projection ? d.projection.describe() : "none", ")");
  io::PefSet set = io::load_pefs(files);
  at::Tensor pefs = set.pefs.to(dev);
  decomposition::normalize_pefs(pefs);
  const at::Tensor h = d.h.to(dev);
  const at::Tensor w = decomposition::fit_coefficients(pefs, h, o.steps, o.seed);
  const at::Tensor losses = decomposition::npeff_example_losses(pefs, w, h);
  const double mean_loss = losses.mean().item<double>();

  io::File file = io::File::create(o.out);
  io::write_header(file, {"npeff.coefficients", 1},
                   {{"command", "fit-coeffs"},
                    {"decomposition", o.decomposition},
                    {"pefs", o.pefs},
                    {"steps", o.steps},
                    {"seed", o.seed}});
  const at::Tensor wc = w.cpu().contiguous();
  file.root()
      .create_dataset("W", io::DType::kFloat32, {wc.size(0), wc.size(1)})
      .write(wc.data_ptr<float>());
  file.root()
      .create_dataset("example_ids", io::DType::kInt64, {wc.size(0)})
      .write(set.example_ids.data_ptr<std::int64_t>());
  file.root()
      .create_dataset("example_loss", io::DType::kFloat64, {wc.size(0)})
      .write(losses.contiguous().data_ptr<double>());
  file.root().set_attr("mean_example_loss", mean_loss);
  file.commit();
  const nlohmann::json summary = {{"command", "fit-coeffs"},
                                  {"output", o.out},
                                  {"examples", wc.size(0)},
                                  {"mean_example_loss", mean_loss}};
  return report_success(o.out, summary, o.json);
}

}  // namespace

void add_fit_coeffs_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<FitCoeffsOptions>();
  CLI::App* sub = app.add_subcommand(
      "fit-coeffs",
      "Fit non-negative coefficients of PEFs to the fixed components of a decomposition by\n"
      "repeated multiplicative updates, and report each example's reconstruction loss\n"
      "(||G^T G - sum_j W_j h_j h_j^T||_F^2 of the normalised PEF).\n"
      "Example:\n  npeff fit-coeffs --decomposition d.h5 --pefs heldout.h5 --out heldout.coeffs.h5 "
      "--json");
  sub->add_option("--decomposition,-D", o->decomposition, "npeff.decomposition file")->required();
  sub->add_option("--pefs,-p", o->pefs, "PEF files to fit")->required()->expected(1, -1);
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_option("--steps", o->steps, "Coefficient updates")->capture_default_str();
  sub->add_option("--seed", o->seed, "Initialisation seed")->capture_default_str();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_fit_coeffs(*o, global); }; });
}

}  // namespace npeff::cli
