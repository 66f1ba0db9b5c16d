// npeff synth-pefs: PEFs with a planted ground truth (G_i^T G_i = sum_j W*_ij h*_j h*_j^T), for
// testing decompose and for benchmarks without a model.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/schema.h"
#include "npeff/synth/planted_pefs.h"

namespace npeff::cli {
namespace {

struct SynthPefsOptions {
  synth::PlantedOptions planted;  ///< examples, dim, components, max_active, noise, seed
  std::string out;                ///< output npeff.pefs file (required)
  bool json = false;
};

int run_synth_pefs(const SynthPefsOptions& o) {
  const synth::PlantedPefs planted = synth::make_planted_pefs(o.planted);
  const std::int64_t m = planted.pefs.size(0);
  io::File file = io::File::create(o.out);
  const nlohmann::json prov = {{"command", "synth-pefs"},
                               {"examples", m},
                               {"dim", o.planted.dim},
                               {"components", o.planted.components},
                               {"max_active", o.planted.max_active},
                               {"noise", o.planted.noise},
                               {"seed", o.planted.seed}};
  io::write_header(file, {io::kPefSchema, io::kPefSchemaVersion}, prov);
  const at::Tensor norms = at::bmm(planted.pefs, planted.pefs.transpose(1, 2))
                               .to(at::kDouble)
                               .square()
                               .sum({1, 2})
                               .sqrt();
  io::write_pefs(file, planted.pefs, at::arange(m, at::kLong), norms, nullptr);
  io::Group g = file.root().create_group("planted");
  g.create_dataset("W", io::DType::kFloat32, {m, o.planted.components})
      .write(planted.w.contiguous().data_ptr<float>());
  g.create_dataset("H", io::DType::kFloat32, {o.planted.components, o.planted.dim})
      .write(planted.h.contiguous().data_ptr<float>());
  file.commit();
  return report_success(o.out, {{"command", "synth-pefs"}, {"output", o.out}, {"examples", m}},
                        o.json);
}

}  // namespace

void add_synth_pefs_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<SynthPefsOptions>();
  CLI::App* sub = app.add_subcommand(
      "synth-pefs",
      "Write PEFs with a planted ground truth as an npeff.pefs file: C unit-norm random\n"
      "components h*_j, and per example 1..max-active of them with weights U[0.5, 1.5], so that\n"
      "G_i^T G_i = sum_j W*_ij h*_j h*_j^T exactly (plus --noise). The truth is stored in\n"
      "/planted/W and /planted/H.\n"
      "Example:\n  npeff synth-pefs --examples 2000 --proj-dim 4096 --components 32 --out "
      "planted.h5");
  sub->add_option("--examples", o->planted.examples, "Number of examples m")->required();
  sub->add_option("--proj-dim,-d", o->planted.dim, "PEF dimension d")->required();
  sub->add_option("--components,-C", o->planted.components, "Planted components C*")->required();
  sub->add_option("--max-active", o->planted.max_active, "Most components per example (= PEF rank)")
      ->capture_default_str();
  sub->add_option("--noise", o->planted.noise, "Relative Gaussian noise per PEF")
      ->capture_default_str();
  sub->add_option("--seed", o->planted.seed, "Generator seed")->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &runner] { runner = [o] { return run_synth_pefs(*o); }; });
}

}  // namespace npeff::cli
