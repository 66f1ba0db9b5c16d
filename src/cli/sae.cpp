// npeff sae: the TopK sparse-autoencoder baseline of paper Section 3.1 / Appendix I, trained on
// the final-token activations compute-pefs stores with --save-activations. Written as an
// npeff.decomposition with method "sae" (W = latent codes, H = unit decoder columns) plus the
// trained SAE in /sae, so tune-report and compare take it like any decomposition.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <optional>

#include "cli/subcommands.h"
#include "npeff/analysis/sae.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"

namespace npeff::cli {
namespace {

struct SaeCliOptions {
  std::vector<std::string> pefs;  ///< npeff.pefs files with /activations (required)
  analysis::SaeOptions sae;       ///< latents (required), k 32, lr 1e-3, batch 4096, steps 51200
  std::string out;
  bool json = false;
};

void write_matrix(io::Group& g, const std::string& name, const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).contiguous();
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  g.create_dataset(name, io::DType::kFloat32, shape).write(c.data_ptr<float>());
}

int run_sae(SaeCliOptions o, const GlobalOptions& global) {
  o.sae.device = select_device(global.device);
  PathCheck inputs;
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  // Refuses a working folder of other settings before reading anything.
  io::ResumeDir resume(o.out, analysis::sae_resume_settings(o.pefs, o.sae));
  std::vector<at::Tensor> acts, ids;
  for (const std::string& path : o.pefs) {
    const io::File f = io::File::open(path);
    io::expect_schema(f, "npeff.pefs", 1);
    NPEFF_CHECK(f.root().has("activations"), path,
                " has no /activations: rerun compute-pefs with --save-activations");
    const io::Dataset a = f.root().dataset("activations");
    const auto shape = a.shape();
    NPEFF_CHECK(shape.size() == 2, path, ":/activations has ", shape.size(),
                " dimensions, expected 2 [m, hidden]");
    NPEFF_CHECK(acts.empty() || shape[1] == acts.front().size(1), path, " has activations of size ",
                shape[1], " but ", o.pefs.front(), " of size ", acts.front().size(1));
    at::Tensor t = at::empty({shape[0], shape[1]}, at::kFloat);
    a.read(t.data_ptr<float>());
    at::Tensor id = at::empty({shape[0]}, at::kLong);
    f.root().dataset("example_ids").expect(io::DType::kInt64, {shape[0]});
    f.root().dataset("example_ids").read(id.data_ptr<int64_t>());
    acts.push_back(t), ids.push_back(id);
  }
  // Appendix I: per-token activations normalised to unit L2 norm, for training and for ranking.
  const at::Tensor x = analysis::normalize_rows(at::cat(acts));
  std::optional<Progress> progress;  // from the first step run (after a resumed checkpoint)
  const analysis::SaeTrainResult r = analysis::train_sae(
      x, o.sae,
      [&](int64_t step) {
        if (!progress) progress.emplace("sae", o.sae.steps - step + 1, "steps", 5.0);
        progress->advance(1);
      },
      &resume);
  if (progress) progress->finish();
  const analysis::SaeCodes codes = analysis::sae_encode(r.model, x);

  decomposition::DecompositionData d;
  d.method = "sae";
  d.w = codes.codes;
  d.h = r.model.w_dec.t().contiguous();
  d.example_ids = at::cat(ids);
  d.loss.steps = r.steps;
  d.loss.values = r.fvu;  // FVU over all examples
  d.loss.seconds = r.seconds;
  const analysis::SaeOptions& s = o.sae;
  io::File f = io::File::create(o.out);
  io::write_header(f, {"npeff.decomposition", 1},
                   {{"command", "sae"},
                    {"pefs", o.pefs},
                    {"latents", s.latents},
                    {"k", s.k},
                    {"lr", s.lr},
                    {"batch_size", s.batch_size},
                    {"steps", s.steps},
                    {"seed", s.seed},
                    {"examples", x.size(0)},
                    {"normalization", "unit L2 norm per example"}});
  decomposition::write_factors(f, d);
  f.root().set_attr("components", s.latents);
  f.root().set_attr("seed", s.seed);
  f.root().set_attr("final_fvu", r.final_fvu);
  f.root().set_attr("final_loss", r.final_fvu);
  f.root().set_attr("dead_latents", r.dead_latents);
  io::Group g = f.root().create_group("sae");
  write_matrix(g, "w_enc", r.model.w_enc);
  write_matrix(g, "b_enc", r.model.b_enc);
  write_matrix(g, "w_dec", r.model.w_dec);
  write_matrix(g, "b_dec", r.model.b_dec);
  g.set_attr("k", s.k);
  f.commit();
  resume.finish();
  return report_success(o.out,
                        {{"command", "sae"},
                         {"output", o.out},
                         {"examples", x.size(0)},
                         {"latents", s.latents},
                         {"k", s.k},
                         {"initial_fvu", r.fvu.front()},
                         {"final_fvu", r.final_fvu},
                         {"dead_latents", r.dead_latents},
                         {"seconds", progress ? progress->elapsed_seconds() : 0.0}},
                        o.json);
}

}  // namespace

void add_sae_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<SaeCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "sae",
      "TopK sparse-autoencoder baseline (paper Section 3.1, Appendix I; Gao et al. 2024) on the\n"
      "final-token activations of PEF files made with compute-pefs --save-activations:\n"
      "activations normalised to unit norm, z = ReLU(TopK(W_enc (x - b_dec) + b_enc)), unit-norm\n"
      "encoder rows and decoder columns (tangent-space gradients), decoder initialised to the\n"
      "encoder's transpose, Adam. Reports the fraction of variance unexplained (FVU) and dead\n"
      "latents. Writes an npeff.decomposition (method sae: W = codes, H = decoder columns).\n"
      "Resumable: a checkpoint OUT.partial.d/checkpoint.h5 is replaced every --checkpoint-every\n"
      "steps and picked up by a rerun of the same command (other settings are refused).\n"
      "Examples:\n"
      "  npeff sae -p sst2.pefs.h5 --latents 512 -o sst2.sae.h5\n"
      "  npeff sae -p a.h5 -p b.h5 --latents 128 --k 32 --steps 2000 --seed 1 -o sae.h5 --json");
  sub->add_option("--pefs,-p", o->pefs, "PEF files with /activations")->required();
  sub->add_option("--latents", o->sae.latents, "Latents (the paper: as many as NPEFF components)")
      ->required();
  sub->add_option("--k", o->sae.k, "Active latents per example")->capture_default_str();
  sub->add_option("--lr", o->sae.lr, "Adam learning rate")->capture_default_str();
  sub->add_option("--batch-size", o->sae.batch_size, "Examples per step (capped at m)")
      ->capture_default_str();
  sub->add_option("--steps", o->sae.steps, "Training steps (App. I: 51,200)")
      ->capture_default_str();
  sub->add_option("--seed", o->sae.seed, "Initialisation and batch-order seed")
      ->capture_default_str();
  sub->add_option("--record-every", o->sae.record_every, "Steps between FVU records")
      ->capture_default_str();
  sub->add_option("--checkpoint-every", o->sae.checkpoint_every,
                  "Checkpoint every N steps (0: never)")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &global, &runner] { runner = [o, &global] { return run_sae(*o, global); }; });
}

}  // namespace npeff::cli
