// npeff compute-pefs: per-example Fisher matrices of a task's examples with a real model (paper
// Sections 2.1, 2.2.1, 3.1), projected, written as npeff.pefs; sharded and resumable.
#include <ATen/ATen.h>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/paths.h"
#include "npeff/core/progress.h"
#include "npeff/core/version.h"
#include "npeff/io/content_hash.h"
#include "npeff/io/pef_writer.h"
#include "npeff/io/resume.h"
#include "npeff/model/loader.h"
#include "npeff/pef/compute.h"

namespace npeff::cli {
namespace {

struct ComputePefsOptions {
  std::string model;             ///< HF directory, GGUF or llama2.c .bin (required)
  std::string tokenizer;         ///< overrides the model's tokenizer
  TaskSelection sel;             ///< --task, --data, --split, --start, --max-examples
  std::string shard = "0/1";     ///< I/N: this process's share of the batches
  int64_t batch_size = 8;        ///< examples per forward/backward batch (and per flush)
  std::string pef = "exact";     ///< exact | expectation | gradient
  int64_t top_k = 0;             ///< exact: top-k categories only (0: all)
  int64_t eps = 0;               ///< expectation: K rows
  uint64_t eps_seed = 0;         ///< expectation: seed of the K x r sign matrix
  int64_t svd_rank = 0;          ///< 0: keep all rows
  int64_t proj_dim = 0;          ///< d (required)
  uint64_t proj_seed = 0;        ///< projection seed
  int64_t proj_region_size = 0;  ///< s; 0: max(1, d/32)
  std::string proj_kind = "sparse";
  std::string params;                  // empty: the model family's default
  std::string storage_dtype = "fp32";  ///< fp32 | fp16 (HDF5 has no bf16 type)
  bool save_activations = false;
  int64_t vocab_top = 10;    ///< vocab tasks: top entries of p kept
  int64_t flush_every = 64;  ///< examples per crash-safe part file (whole batches)
  std::string out;           ///< output npeff.pefs file (required)
  bool json = false;
};

std::pair<int64_t, int64_t> parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  int64_t i = -1, n = -1;
  try {
    if (slash != std::string::npos) {
      size_t a = 0, b = 0;
      i = std::stoll(text.substr(0, slash), &a);
      n = std::stoll(text.substr(slash + 1), &b);
      if (a != slash || b != text.size() - slash - 1) i = -1;
    }
  } catch (const std::exception&) {
    i = -1;
  }
  NPEFF_CHECK(i >= 0 && n >= 1 && i < n, "--shard must be I/N with 0 <= I < N, got '", text, "'");
  return {i, n};
}

int run_compute_pefs(const ComputePefsOptions& o, const GlobalOptions& g) {
  PathCheck inputs;  // every input at once, before loading anything
  check_model_paths(inputs, o.model, o.tokenizer);
  o.sel.check_paths(inputs);
  inputs.throw_if_any();
  const task::Task task = o.sel.load();
  NPEFF_CHECK(o.batch_size > 0, "--batch-size must be positive, got ", o.batch_size);
  NPEFF_CHECK(o.proj_dim > 0, "--proj-dim must be positive (the projected dimension d)");
  NPEFF_CHECK(o.storage_dtype == "fp32" || o.storage_dtype == "fp16",
              "--storage-dtype must be fp32 or fp16, got '", o.storage_dtype, "'");
  const auto [shard, shards] = parse_shard(o.shard);
  const std::vector<task::Example> all = task::load_examples(task, o.sel.start, o.sel.max_examples);
  // Shards are whole batches, numbered from --start: every example lands in the same batch
  // whatever the sharding, so the union of the shards equals a single run bit for bit.
  const int64_t m = static_cast<int64_t>(all.size());
  const int64_t batches = (m + o.batch_size - 1) / o.batch_size;
  const int64_t first = std::min(m, batches * shard / shards * o.batch_size);
  const int64_t last = std::min(m, batches * (shard + 1) / shards * o.batch_size);
  const std::vector<task::Example> examples(all.begin() + first, all.begin() + last);

  model::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  lo.require_tokenizer = true;
  model::LoadedModel loaded = model::load_model(o.model, lo);
  const c10::Device dev = select_device(g.device);
  if (dev.is_cuda()) loaded.model->to(dev, at::kFloat);
  const auto selection = model::ParameterSelection::parse(*loaded.model, o.params);
  const projection::Projection proj(
      {o.proj_seed, o.proj_dim, o.proj_region_size, projection::parse_kind(o.proj_kind)});
  pef::PefOptions po;
  po.kind = pef::parse_pef_kind(o.pef);
  po.top_k = o.top_k;
  po.eps = o.eps;
  po.eps_seed = o.eps_seed;
  po.svd_rank = o.svd_rank;
  po.vocab_top = o.vocab_top;
  po.activations = o.save_activations;
  const pef::PefComputer computer(*loaded.model, *loaded.tokenizer, task, selection, proj, po);
  const projection::ProjectionRecord record = projection::make_record(proj, selection.total());

  // Paths as one spelling (absolute, no trailing '/'): a rerun typed differently still resumes.
  const nlohmann::json settings = {{"model", absolute_path(o.model)},
                                   {"model_hash", io::content_hash(o.model)},
                                   {"tokenizer", absolute_path(o.tokenizer)},
                                   {"task", nlohmann::json::parse(task.to_json())},
                                   {"start", o.sel.start},
                                   {"max_examples", o.sel.max_examples},
                                   {"shard", o.shard},
                                   {"examples", {first, last}},
                                   {"batch_size", o.batch_size},
                                   {"pef", o.pef},
                                   {"top_k", o.top_k},
                                   {"eps", o.eps},
                                   {"eps_seed", o.eps_seed},
                                   {"svd_rank", o.svd_rank},
                                   {"projection", record.to_json()},
                                   {"params", selection.patterns()},
                                   {"selected_parameters", selection.total()},
                                   {"storage_dtype", o.storage_dtype},
                                   {"save_activations", o.save_activations},
                                   {"vocab_top", o.vocab_top},
                                   {"device", g.device}};
  nlohmann::json provenance = settings;
  provenance["command"] = "compute-pefs";
  provenance["categories"] = computer.categories();
  provenance["rows"] = computer.rows();
  provenance["rank"] = computer.rank();
  provenance["threads"] = g.threads;

  io::PefWriterSpec spec;
  spec.path = o.out;
  spec.settings = settings;  // plus what identifies the input files' content
  spec.settings["data_file"] = io::file_fingerprint(task.data.path);
  if (!o.tokenizer.empty()) spec.settings["tokenizer_file"] = io::file_fingerprint(o.tokenizer);
  spec.provenance = provenance;
  spec.rank = computer.rank();
  spec.dim = proj.dim();
  spec.float16 = o.storage_dtype == "fp16";
  spec.flush_examples = o.flush_every;
  io::PefWriter writer(spec);
  const int64_t count = static_cast<int64_t>(examples.size());
  const int64_t resumed_at = writer.done();
  NPEFF_CHECK(resumed_at == count || (resumed_at < count && resumed_at % o.batch_size == 0),
              "the partial file holds ", writer.done(), " examples, not a whole number of batches");
  if (writer.resumed())
    log::info("resuming ", writer.part_dir(), " after ", writer.done(), " of ", count, " examples");
  log::info("compute-pefs: ", task.name, " examples [", o.sel.start + first, ", ",
            o.sel.start + last, ") of ", m, ", --pef ", o.pef, ", ", computer.rows(),
            " rows -> rank ", computer.rank(), ", ", selection.total(), " parameters in ",
            selection.slices().size(), " tensors -> d = ", proj.dim());

  Progress progress("compute-pefs", count - writer.done(), "examples");
  for (int64_t b = writer.done(); b < count; b += o.batch_size) {
    const int64_t n = std::min(o.batch_size, count - b);
    const std::vector<task::Example> part(examples.begin() + b, examples.begin() + b + n);
    const pef::PefBatch result = computer.compute(part);
    std::vector<int64_t> ids, labels;
    std::vector<std::string> prompts;
    for (const auto& e : part) {
      ids.push_back(e.id);
      labels.push_back(e.label);
      prompts.push_back(e.prompt);
    }
    writer.append(result, ids, labels, prompts);
    progress.advance(n);
  }
  progress.finish();
  // A vocabulary task has no label names (its config may still list "labels"; they are unused).
  writer.finish(task.kind == task::TaskKind::kVocab ? std::vector<std::string>{} : task.labels,
                selection, record);

  const double secs = progress.elapsed_seconds();
  const int64_t computed = count - resumed_at;
  return report_success(o.out,
                        {{"command", "compute-pefs"},
                         {"output", o.out},
                         {"examples", count},
                         {"first_example", o.sel.start + first},
                         {"rank", computer.rank()},
                         {"dim", proj.dim()},
                         {"selected_parameters", selection.total()},
                         {"resumed_at", resumed_at},
                         {"seconds", secs},
                         {"examples_per_second", secs > 0 ? computed / secs : 0.0}},
                        o.json);
}

}  // namespace

void add_compute_pefs_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<ComputePefsOptions>();
  CLI::App* sub = app.add_subcommand(
      "compute-pefs",
      "Per-example Fisher matrices (PEFs) of a task's examples (paper Section 2.1): low-rank rows\n"
      "G_i from one batched forward and k batched backward passes, projected to --proj-dim by the\n"
      "sparse random projection, optionally SVD-reduced, normalised to ||G^T G||_F = 1 (raw norms\n"
      "kept). Writes npeff.pefs with predictions, labels and prompts. Resumable: rerun the same\n"
      "command after an interruption. --shard I/N splits the batches over SLURM array tasks;\n"
      "later stages take the shard files together.\n"
      "Examples:\n"
      "  npeff compute-pefs -m SmolLM2-135M-Instruct.Q4_1.gguf --task configs/tasks/sst2.json \\\n"
      "      --params 'model.layers.28.*,model.layers.29.*,!*norm*' --proj-dim 4096 --max-examples "
      "500 -o "
      "sst2.pefs.h5\n"
      "  npeff compute-pefs -m model_dir --task configs/tasks/triviaqa.json --pef expectation "
      "--eps 16 \\\n"
      "      --svd-rank 4 --proj-dim 8192 --shard $SLURM_ARRAY_TASK_ID/8 -o trivia.$SLURM_ARRAY_"
      "TASK_ID.h5\n"
      "  npeff compute-pefs -m stories260K.bin --task t.json --pef gradient --proj-dim 1024 -o "
      "g.h5 "
      "--json");
  add_model_options(sub, o->model, o->tokenizer);
  add_task_options(sub, o->sel);
  sub->add_option("--shard", o->shard, "I/N: compute the I-th of N equal shares of the batches")
      ->capture_default_str();
  sub->add_option("--batch-size", o->batch_size, "Examples per batch (and per flush)")
      ->capture_default_str();
  sub->add_option("--pef", o->pef, "exact | expectation | gradient (G-NPEFF)")
      ->capture_default_str()
      ->check(CLI::IsMember({"exact", "expectation", "gradient"}));
  sub->add_option("--top-classes", o->top_k, "exact: only the top classes by p (0: all)")
      ->capture_default_str();
  sub->add_option("--eps", o->eps, "expectation: rows K of the random projection A (Sec. 2.1.1)")
      ->capture_default_str();
  sub->add_option("--eps-seed", o->eps_seed, "expectation: seed of A")->capture_default_str();
  sub->add_option("--svd-rank", o->svd_rank, "Keep the top-R singular directions (0: all rows)")
      ->capture_default_str();
  sub->add_option("--proj-dim,-d", o->proj_dim, "Projected dimension d")->required();
  sub->add_option("--proj-seed", o->proj_seed, "Projection seed")->capture_default_str();
  sub->add_option("--proj-region-size", o->proj_region_size, "Region size s (0: max(1, d/32))")
      ->capture_default_str();
  sub->add_option("--proj-kind", o->proj_kind, "sparse | dense")
      ->capture_default_str()
      ->check(CLI::IsMember({"sparse", "dense"}));
  sub->add_option("--params", o->params,
                  "Selected parameters: comma-separated globs over HF names, '!' excludes "
                  "(default: the family's block weights without norms, e.g. "
                  "'model.layers.*,!*norm*'; npeff model-info shows it)");
  sub->add_option("--storage-dtype", o->storage_dtype, "fp32 | fp16 for /pefs")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "fp16"}));
  sub->add_flag("--save-activations", o->save_activations,
                "Also store the final-token hidden state (for the SAE baseline)");
  sub->add_option("--vocab-top", o->vocab_top, "vocab tasks: top entries of p to store")
      ->capture_default_str();
  sub->add_option("--flush-every", o->flush_every,
                  "Examples per part file in OUT.partial.d/, later OUT.parts/ (the most work a "
                  "kill loses)")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out,
                  "Output file; its PEFs live in OUT.parts/ beside it (docs/formats.md, "
                  "\"Part files\"): move the two together")
      ->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_compute_pefs(*o, global); }; });
}

}  // namespace npeff::cli
