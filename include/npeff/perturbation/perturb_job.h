// The whole `npeff perturb` stage as one call (docs/recovery.md, paper Section 3.2, Table 2):
// map the decomposition's rows to the PEF file's examples (prompts, labels, norms), draw the
// random baseline, and for each recovered direction measure the KL selectivity on the
// component's top examples; writes the npeff.perturbation file.
//
// Resuming (docs/formats.md, "Resuming"): each finished component is a piece
// OUT.partial.d/component-K.h5 (K = its position in the recovered file; schema
// npeff.perturbation_part) of the job's io::ResumeDir. A rerun with the same settings (the three
// input files and the model by path, size and content hash, every option, the device) reuses the
// pieces and ends with the same bits as an uninterrupted run; other settings are refused
// (npeff::Error). The folder is removed once OUT is written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace npeff::perturbation {

struct PerturbJobOptions {
  std::string recovered;         ///< npeff.recovered (required)
  std::string decomposition;     ///< npeff.decomposition (required): W gives the top examples
  std::string pefs;              ///< npeff.pefs (required): prompts, norms, model, task
  std::string model;             ///< default: the model recorded in the PEF file
  std::string tokenizer;         ///< default: the tokenizer recorded in the PEF file
  double magnitude = 20;         ///< ||delta|| (App. G: 20)
  std::int64_t top_k = 16;       ///< top examples per component (by coefficient)
  std::int64_t baseline = 1000;  ///< random baseline examples
  std::uint64_t seed = 0;        ///< baseline draw
  std::int64_t batch_size = 16;  ///< examples per forward pass
  std::string device = "cpu";    ///< --device text (select_device)
  std::string out;               ///< npeff.perturbation (required)
};

/// One component's selectivity, as in the output's per-component datasets.
struct PerturbedComponent {
  std::int64_t component = 0;
  double kl_top[2] = {0, 0};          ///< mean KL on the top examples for +delta, -delta
  double kl_baseline[2] = {0, 0};     ///< the same on the baseline
  double ratio = 1;                   ///< KL ratio at the better sign
  double norm_ratio = 1;              ///< PEF-norm ratio (top / baseline)
  std::int64_t sign = 1;              ///< +1 / -1: the better sign
  std::vector<std::int64_t> top_ids;  ///< example ids of the top examples
  std::vector<double> top_kl;         ///< their KL at the better sign
};

struct PerturbJobSummary {
  std::vector<PerturbedComponent> components;
  double geometric_mean_kl_ratio = 0;
  double geometric_mean_norm_ratio = 0;
  std::int64_t baseline_examples = 0;
  std::int64_t reused = 0;  ///< components taken from pieces of an earlier run
  double seconds = 0;       ///< of this run
};

/// Runs the stage. npeff::Error on bad options, inputs from different runs (projection, model,
/// example ids), a component recovered as zero, or a working folder of other settings.
PerturbJobSummary run_perturb_job(const PerturbJobOptions& options);

}  // namespace npeff::perturbation
