// npeff recover: parameter-space directions of components (paper Sections 2.2.1, 3.2, App. G):
// orthogonal rejection in projected space, then compressed sensing by FPC through the same
// sparse projection the PEFs were made with. Writes npeff.recovered.
#include <nlohmann/json.hpp>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/paths.h"
#include "npeff/recovery/recover_job.h"
#include "npeff/recovery/recovery.h"

namespace npeff::cli {
namespace {

struct RecoverOptions {
  std::string decomposition;  ///< npeff.decomposition (required)
  std::string pefs;           ///< the npeff.pefs file it was made from (required)
  std::string components;     ///< comma-separated ids; empty: --random or all
  int64_t random = 0;         ///< pick this many components at random (--seed)
  uint64_t seed = 0;
  double reject_threshold = 0.5;  ///< Section 3.2; 0 disables the rejection
  recovery::FpcOptions fpc;       ///< mu 4e-5, beta 4, gamma 0.99 (App. G)
  std::string out;                ///< npeff.recovered (required)
  bool json = false;
};

int run_recover(const RecoverOptions& o, const GlobalOptions& g) {
  PathCheck inputs;
  inputs.file("--decomposition", o.decomposition);
  inputs.file("--pefs", o.pefs);
  inputs.throw_if_any();
  recovery::RecoverJobOptions job;
  job.decomposition = o.decomposition;
  job.pefs = o.pefs;
  job.component_ids = o.components;
  job.random = o.random;
  job.seed = o.seed;
  job.reject_threshold = o.reject_threshold;
  job.fpc = o.fpc;
  job.out = o.out;
  job.device = select_device(g.device);
  const recovery::RecoverJobSummary s = recovery::run_recover_job(job);
  nlohmann::json per = nlohmann::json::array();
  for (const recovery::RecoveredComponent& c : s.components) {
    nlohmann::json touched = nlohmann::json::object();
    for (const auto& [name, count] : c.parameters_touched) touched[name] = count;
    per.push_back({{"component", c.component},
                   {"nnz", c.nnz},
                   {"relative_residual", c.relative_residual},
                   {"rejected", c.rejected},
                   {"parameters_touched", touched}});
  }
  return report_success(o.out,
                        {{"command", "recover"},
                         {"output", o.out},
                         {"components", per},
                         {"reused_components", s.reused},
                         {"seconds", s.seconds}},
                        o.json);
}

}  // namespace

void add_recover_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<RecoverOptions>();
  CLI::App* sub = app.add_subcommand(
      "recover",
      "Recover sparse parameter-space directions u of components (A u ~= h_j): optional\n"
      "orthogonal rejection against the other components (Section 3.2), then FPC compressed\n"
      "sensing, min |u|_1 + 1/(2 mu) |A u - h|^2 (Appendix G), through the projection the PEFs\n"
      "were made with. Writes npeff.recovered (sparse u, residuals, parameters touched).\n"
      "Resumable per component: finished ones are kept in OUT.partial.d/ and reused by a rerun\n"
      "of the same command (other settings are refused).\n"
      "Examples:\n"
      "  npeff recover --decomposition sst2.npeff.h5 --pefs sst2.pefs.h5 --random 16 -o r.h5\n"
      "  npeff recover -D d.h5 -p p.h5 --component-ids 3,17 --reject-threshold 0 -o r.h5 --json");
  sub->add_option("--decomposition,-D", o->decomposition, "npeff.decomposition file")->required();
  sub->add_option("--pefs,-p", o->pefs,
                  "The npeff.pefs file it was made from (for the "
                  "projection check and the parameter names)")
      ->required();
  sub->add_option("--component-ids", o->components, "Comma-separated component ids (default all)");
  sub->add_option("--random", o->random, "Recover N components chosen at random (--seed)");
  sub->add_option("--seed", o->seed, "Seed of --random")->capture_default_str();
  sub->add_option("--reject-threshold", o->reject_threshold,
                  "Reject components with |cos| below this (0: no rejection)")
      ->capture_default_str();
  sub->add_option("--mu", o->fpc.mu, "FPC mu")->capture_default_str();
  sub->add_option("--beta", o->fpc.beta, "FPC continuation factor")->capture_default_str();
  sub->add_option("--gamma", o->fpc.gamma, "FPC first threshold, x |A^T h|_inf")
      ->capture_default_str();
  sub->add_option("--cg-iterations", o->fpc.cg_iterations, "Subspace CG steps per stage")
      ->capture_default_str();
  sub->add_option("--max-final-stages", o->fpc.final_iterations, "Most stages at the target mu")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_recover(*o, global); }; });
}

}  // namespace npeff::cli
