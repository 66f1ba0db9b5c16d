// npeff perturb: does perturbing the parameters along a recovered component direction
// selectively change the predictions on that component's top examples? (paper Sections 2.2.1,
// 3.2, Appendix G, Table 2). Writes npeff.perturbation; resumable per component.
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/core/paths.h"
#include "npeff/perturbation/perturb_job.h"

namespace npeff::cli {
namespace {

struct PerturbOptions {
  std::string recovered;      ///< npeff.recovered (required)
  std::string decomposition;  ///< npeff.decomposition (required): W gives the top examples
  std::string pefs;           ///< npeff.pefs (required): prompts, norms, model, task
  std::string model;          ///< default: the model recorded in the PEF file
  std::string tokenizer;
  double magnitude = 20;    ///< ||delta|| (App. G: 20)
  int64_t top_k = 16;       ///< top examples per component (by coefficient)
  int64_t baseline = 1000;  ///< random baseline examples
  uint64_t seed = 0;        ///< baseline draw
  int64_t batch_size = 16;
  std::string out;
  bool json = false;
};

int run_perturb(const PerturbOptions& o, const GlobalOptions& g) {
  PathCheck inputs;
  inputs.file("--recovered", o.recovered);
  inputs.file("--decomposition", o.decomposition);
  inputs.file("--pefs", o.pefs);
  if (!o.model.empty()) inputs.file_or_folder("--model", o.model);
  if (!o.tokenizer.empty()) inputs.file_or_folder("--tokenizer", o.tokenizer);
  inputs.throw_if_any();
  perturbation::PerturbJobOptions job;
  job.recovered = o.recovered;
  job.decomposition = o.decomposition;
  job.pefs = o.pefs;
  job.model = o.model;
  job.tokenizer = o.tokenizer;
  job.magnitude = o.magnitude;
  job.top_k = o.top_k;
  job.baseline = o.baseline;
  job.seed = o.seed;
  job.batch_size = o.batch_size;
  job.device = g.device;
  job.out = o.out;
  const perturbation::PerturbJobSummary s = perturbation::run_perturb_job(job);

  nlohmann::json per = nlohmann::json::array();
  for (const auto& r : s.components)
    per.push_back({{"component", r.component},
                   {"kl_ratio", r.ratio},
                   {"sign", r.sign},
                   {"norm_ratio", r.norm_ratio},
                   {"mean_kl_top", r.kl_top[r.sign > 0 ? 0 : 1]},
                   {"mean_kl_baseline", r.kl_baseline[r.sign > 0 ? 0 : 1]}});
  const nlohmann::json summary = {{"command", "perturb"},
                                  {"output", o.out},
                                  {"components", per},
                                  {"geometric_mean_kl_ratio", s.geometric_mean_kl_ratio},
                                  {"geometric_mean_norm_ratio", s.geometric_mean_norm_ratio},
                                  {"reused_components", s.reused},
                                  {"seconds", s.seconds}};
  if (!o.json) {
    std::cout << "component  KL ratio  sign  PEF-norm ratio\n";
    for (const auto& r : s.components)
      std::cout << r.component << "  " << r.ratio << "  " << (r.sign > 0 ? "+" : "-") << "  "
                << r.norm_ratio << "\n";
    std::cout << "geometric means: KL ratio " << s.geometric_mean_kl_ratio << ", PEF-norm ratio "
              << s.geometric_mean_norm_ratio << "\n";
  }
  return report_success(o.out, summary, o.json);
}

}  // namespace

void add_perturb_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<PerturbOptions>();
  CLI::App* sub = app.add_subcommand(
      "perturb",
      "Perturb the model along each recovered component direction (theta +- magnitude u/|u|)\n"
      "and compare KL(p_theta || p_theta+delta) on the component's top examples (by coefficient)\n"
      "with a random baseline: KL ratio (the better sign) and PEF-norm ratio per component,\n"
      "geometric means over components (paper Section 3.2, Table 2). The model and task come\n"
      "from the PEF file's provenance. Resumable per component: finished ones are kept in\n"
      "OUT.partial.d/ and reused by a rerun of the same command (other settings are refused).\n"
      "Examples:\n"
      "  npeff perturb --recovered r.h5 --decomposition d.h5 --pefs p.h5 -o perturb.h5\n"
      "  npeff perturb -r r.h5 -D d.h5 -p p.h5 --magnitude 10 --baseline 200 -o x.h5 --json");
  sub->add_option("--recovered,-r", o->recovered, "npeff.recovered file")->required();
  sub->add_option("--decomposition,-D", o->decomposition, "npeff.decomposition file")->required();
  sub->add_option("--pefs,-p", o->pefs, "npeff.pefs file the decomposition was made from")
      ->required();
  sub->add_option("--model,-m", o->model, "Model (default: the one the PEFs were computed with)");
  sub->add_option("--tokenizer,-t", o->tokenizer, "Tokenizer (default: as for the PEFs)");
  sub->add_option("--magnitude", o->magnitude, "L2 norm of the perturbation")
      ->capture_default_str();
  sub->add_option("--top-examples", o->top_k, "Top examples per component")->capture_default_str();
  sub->add_option("--baseline", o->baseline, "Random baseline examples")->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the baseline draw")->capture_default_str();
  sub->add_option("--batch-size", o->batch_size, "Examples per forward pass")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_perturb(*o, global); }; });
}

}  // namespace npeff::cli
