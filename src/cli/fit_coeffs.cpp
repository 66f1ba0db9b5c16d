// npeff fit-coeffs: coefficients of new PEFs on the fixed components of a decomposition
// (paper Section 2.2: repeated coefficient updates), with per-example reconstruction loss
// (held-in vs held-out, paper Table 5).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/decomposition/fit_coeffs_job.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"

namespace npeff::cli {
namespace {

struct FitCoeffsOptions {
  decomposition::FitCoeffsJobOptions job;  ///< pefs, decomposition, steps, seed, block bytes
  std::string out;                         ///< output npeff.coefficients file (required)
  bool json = false;
};

int run_fit_coeffs(FitCoeffsOptions o, const GlobalOptions& g) {
  PathCheck inputs;
  inputs.file("--decomposition", o.job.decomposition);
  inputs.files("--pefs", o.job.pefs);
  inputs.throw_if_any();
  o.job.device = g.device;
  const decomposition::FitCoeffsResult r = decomposition::run_fit_coeffs_job(o.job);
  const double mean_loss = r.example_loss.mean().item<double>();

  io::File file = io::File::create(o.out);
  io::write_header(file, {"npeff.coefficients", 1},
                   {{"command", "fit-coeffs"},
                    {"decomposition", o.job.decomposition},
                    {"pefs", o.job.pefs},
                    {"steps", o.job.steps},
                    {"seed", o.job.seed},
                    {"device", g.device}});
  const at::Tensor w = r.w.contiguous();
  file.root()
      .create_dataset("W", io::DType::kFloat32, {w.size(0), w.size(1)})
      .write(w.data_ptr<float>());
  file.root()
      .create_dataset("example_ids", io::DType::kInt64, {w.size(0)})
      .write(r.example_ids.data_ptr<std::int64_t>());
  file.root()
      .create_dataset("example_loss", io::DType::kFloat64, {w.size(0)})
      .write(r.example_loss.contiguous().data_ptr<double>());
  file.root().set_attr("mean_example_loss", mean_loss);
  file.commit();
  const nlohmann::json summary = {{"command", "fit-coeffs"},
                                  {"output", o.out},
                                  {"examples", w.size(0)},
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
      "(||G^T G - sum_j W_j h_j h_j^T||_F^2 of the normalised PEF). One pass over the PEFs,\n"
      "a block at a time: memory is one block plus ~16 m C bytes (docs/decomposition.md).\n"
      "Example:\n  npeff fit-coeffs --decomposition d.h5 --pefs heldout.h5 --out heldout.coeffs.h5 "
      "--json");
  sub->add_option("--decomposition,-D", o->job.decomposition, "npeff.decomposition file")
      ->required();
  sub->add_option("--pefs,-p", o->job.pefs, "PEF files to fit")->required()->expected(1, -1);
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_option("--steps", o->job.steps, "Coefficient updates")->capture_default_str();
  sub->add_option("--seed", o->job.seed, "Initialisation seed")->capture_default_str();
  sub->add_option("--max-block-bytes", o->job.max_block_bytes,
                  "Bytes of one block of PEFs read at a time (float32; the PEFs are read once, "
                  "never held whole); 0: 128 MiB on the CPU, 1 GiB on a GPU")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_fit_coeffs(*o, global); }; });
}

}  // namespace npeff::cli
