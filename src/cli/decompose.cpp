// npeff decompose: the NPEFF decomposition (Algorithm 1) of one or more PEF files, on CPU or GPU,
// in one process or data-parallel over MPI ranks, checkpointed and resumable.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/dist/communicator.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"
#include "npeff/pef/pef_file.h"
#include "npeff/pef/pef_source.h"

namespace npeff::cli {
namespace {

struct DecomposeCliOptions {
  std::vector<std::string> pefs;         ///< input npeff.pefs files (required), in order
  std::string out;                       ///< output npeff.decomposition file (required)
  decomposition::DecomposeOptions algo;  ///< components, steps, learning rates, seed
  std::int64_t checkpoint_every = 500;   ///< steps between checkpoints (OUT.ckpt); 0 = none
  bool drop_nonfinite = false;           ///< drop PEFs with NaN/Inf instead of refusing
  bool drop_zero = false;                ///< drop all-zero PEFs instead of refusing
  std::string compute_dtype = "fp32";    ///< fp32 | tf32 | bf16 for the two large products
  std::string storage_dtype = "fp32";    ///< fp32 | fp16 | bf16: in-memory copy of G
  bool out_of_core = false;              ///< stream G from the files every step
  std::int64_t block_examples = 4096;    ///< examples per streamed block (--out-of-core)
  bool json = false;                     ///< JSON summary on stdout
};

// Everything that determines the result, to refuse resuming a checkpoint made differently.
std::string config_json(const DecomposeCliOptions& o, const std::vector<pef::PefFileInfo>& files,
                        int processes) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& f : files)
    inputs.push_back(
        {{"path", f.path}, {"examples", f.examples}, {"rank", f.rank}, {"dim", f.dim}});
  return nlohmann::json{{"pefs", inputs},
                        {"components", o.algo.components},
                        {"h_only_steps", o.algo.h_only_steps},
                        {"h_only_lr", o.algo.h_only_lr},
                        {"steps", o.algo.steps},
                        {"lr", o.algo.lr},
                        {"seed", o.algo.seed},
                        {"drop_nonfinite", o.drop_nonfinite},
                        {"drop_zero", o.drop_zero},
                        {"compute_dtype", o.compute_dtype},
                        {"storage_dtype", o.storage_dtype},
                        {"out_of_core", o.out_of_core},
                        {"processes", processes}}
      .dump();
}

// Rows of all ranks in rank order: every rank contributes its rows at [first, first + count).
at::Tensor gather_rows(dist::Communicator& comm, const at::Tensor& local, std::int64_t first,
                       std::int64_t total) {
  std::vector<std::int64_t> shape = local.sizes().vec();
  shape[0] = total;
  at::Tensor full = at::zeros(shape, local.options().device(at::kCPU));
  full.narrow(0, first, local.size(0)).copy_(local.cpu());
  comm.allreduce_sum(full);  // adding zeros is exact
  return full;
}

std::string ids_text(const at::Tensor& ids) {
  std::string out;
  const std::int64_t shown = std::min<std::int64_t>(ids.numel(), 10);
  for (std::int64_t i = 0; i < shown; ++i)
    out += (i ? ", " : "") + std::to_string(ids[i].item<std::int64_t>());
  if (ids.numel() > shown) out += ", ...";
  return out;
}

// This process's examples, ready for the decomposition.
struct Local {
  std::unique_ptr<decomposition::PefSource> source;
  at::Tensor ids;      // example ids of the local rows
  std::int64_t total;  // examples over all processes (after drops)
  std::int64_t first;  // global index of the first local row
};

// Refuses (or drops, when asked and in memory) non-finite and all-zero PEFs, collectively so
// that every process agrees; returns the mask of rows to keep.
at::Tensor check_bad(const DecomposeCliOptions& o, dist::Communicator& comm,
                     const at::Tensor& nonfinite, const at::Tensor& zero, const at::Tensor& ids) {
  at::Tensor bad = at::stack({nonfinite.sum(), zero.sum()}).to(at::kLong);
  comm.allreduce_sum(bad);
  const std::int64_t n_nonfinite = bad[0].item<std::int64_t>(),
                     n_zero = bad[1].item<std::int64_t>();
  const char* how = o.out_of_core ? "; --out-of-core cannot drop them: fix the input or load it "
                                    "in memory with --drop-nonfinite/--drop-zero"
                                  : "";
  NPEFF_CHECK(n_nonfinite == 0 || (o.drop_nonfinite && !o.out_of_core), n_nonfinite,
              " PEFs contain NaN or Inf (example ids ", ids_text(ids.masked_select(nonfinite)),
              " in this process's share); rerun with --drop-nonfinite to leave them out", how);
  NPEFF_CHECK(n_zero == 0 || (o.drop_zero && !o.out_of_core), n_zero,
              " PEFs are all zero (example ids ", ids_text(ids.masked_select(zero)),
              " in this process's share); rerun with --drop-zero to leave them out", how);
  if (n_nonfinite + n_zero > 0 && comm.rank() == 0)
    log::warn("dropping ", n_nonfinite, " non-finite and ", n_zero, " all-zero PEFs");
  return ~(nonfinite | zero);
}

Local prepare(const DecomposeCliOptions& o, const std::vector<pef::PefFileInfo>& files,
              std::int64_t total_in, dist::Communicator& comm, const c10::Device& dev) {
  std::int64_t first_in = 0, count_in = 0;
  dist::partition(total_in, comm.rank(), comm.size(), first_in, count_in);
  if (o.out_of_core) {
    NPEFF_CHECK(o.block_examples > 0, "--block-examples must be positive");
    auto source =
        std::make_unique<pef::FilePefSource>(files, first_in, count_in, dev, o.block_examples);
    check_bad(o, comm, source->nonfinite(), source->zero(), source->example_ids());
    at::Tensor ids = source->example_ids();
    return {std::move(source), ids, total_in, first_in};
  }
  pef::PefSet set = pef::load_pefs(files, first_in, count_in);
  const at::Tensor flat = set.pefs.flatten(1);
  const at::Tensor nonfinite = (~at::isfinite(flat)).any(1);
  const at::Tensor zero = (flat == 0).all(1) & ~nonfinite;
  const at::Tensor keep = check_bad(o, comm, nonfinite, zero, set.example_ids);
  at::Tensor pefs = set.pefs.index({keep});
  at::Tensor counts = at::zeros({comm.size()}, at::kLong);
  counts[comm.rank()] = pefs.size(0);
  comm.allreduce_sum(counts);
  pefs = pefs.to(dev);
  decomposition::normalize_pefs(pefs);
  if (o.storage_dtype != "fp32")
    pefs = pefs.to(o.storage_dtype == "fp16" ? at::kHalf : at::kBFloat16);
  return {decomposition::memory_source(pefs), set.example_ids.masked_select(keep),
          counts.sum().item<std::int64_t>(),
          counts.narrow(0, 0, comm.rank()).sum().item<std::int64_t>()};
}

int run_decompose(const DecomposeCliOptions& o, const GlobalOptions& g) {
  const c10::Device dev = select_device(g.device);
  dist::Communicator& comm = dist::world();
  const int rank = comm.rank(), size = comm.size();
  const auto& a = o.algo;
  NPEFF_CHECK(a.components > 0, "--components must be positive");
  NPEFF_CHECK(a.steps >= 0 && a.h_only_steps >= 0, "step counts must be >= 0");
  NPEFF_CHECK(a.lr > 0 && a.h_only_lr > 0, "learning rates must be positive");
  NPEFF_CHECK(a.log_every > 0, "--log-every must be positive");

  std::vector<pef::PefFileInfo> files;
  for (const auto& path : o.pefs) files.push_back(pef::read_pef_info(path));
  pef::check_compatible(files);
  std::int64_t total_in = 0;
  for (const auto& f : files) total_in += f.examples;
  Local local = prepare(o, files, total_in, comm, dev);
  const std::int64_t total = local.total, first = local.first;
  const at::Tensor ids = local.ids;
  decomposition::Decomposer dec(std::move(local.source), a.components, comm, local.total,
                                local.first);
  dec.set_block_examples(o.out_of_core ? o.block_examples : 0);
  dec.set_compute_dtype(decomposition::parse_compute_dtype(o.compute_dtype));

  const std::string config = config_json(o, files, size);
  const std::string ckpt_path = o.out + ".ckpt";
  decomposition::LossHistory history;
  std::int64_t start = 0;
  double seconds_before = 0;
  decomposition::Checkpoint ck;
  if (decomposition::read_checkpoint(ckpt_path, ck)) {
    NPEFF_CHECK(ck.config == config, "checkpoint ", ckpt_path,
                " was made with different inputs or settings; delete it to start over, or rerun "
                "with the same ones.\n  checkpoint: ",
                ck.config, "\n  this run:   ", config);
    dec.set_state(ck.w.narrow(0, first, dec.examples()), ck.h);
    start = ck.next_step;
    history = ck.loss;
    seconds_before = history.seconds.empty() ? 0 : history.seconds.back();
    if (rank == 0) log::info("resuming ", ckpt_path, " at step ", start);
  } else {
    dec.initialize(a.seed);
  }

  const std::int64_t total_steps = a.h_only_steps + a.steps;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return seconds_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto save_checkpoint = [&](std::int64_t next_step) {
    decomposition::Checkpoint c{next_step, config, gather_rows(comm, dec.w(), first, total),
                                dec.h().cpu(), history};
    if (rank == 0) decomposition::write_checkpoint(ckpt_path, c);
    comm.barrier();
  };
  Progress progress("decompose", total_steps - start, "steps", rank == 0 ? 2.0 : 1e30);
  for (std::int64_t t = start; t < total_steps; ++t) {
    const bool joint = t >= a.h_only_steps;
    double loss = 0;
    const bool log_loss = t % a.log_every == 0;
    dec.step(joint, joint ? a.lr : a.h_only_lr, log_loss ? &loss : nullptr);
    if (log_loss) {
      history.steps.push_back(t);
      history.values.push_back(loss);
      history.seconds.push_back(elapsed());
      if (rank == 0) log::debug("step ", t, " loss ", loss);
    }
    progress.advance(1);
    if (o.checkpoint_every > 0 && (t + 1) % o.checkpoint_every == 0 && t + 1 < total_steps)
      save_checkpoint(t + 1);
  }
  const double final_loss = dec.loss();
  history.steps.push_back(total_steps);
  history.values.push_back(final_loss);
  history.seconds.push_back(elapsed());
  if (rank == 0) progress.finish();
  dec.normalize_components();

  decomposition::DecompositionData data{
      gather_rows(comm, dec.w(), first, total),
      dec.h().cpu(),
      gather_rows(comm, ids.unsqueeze(1), first, total).squeeze(1),
      history,
      files.front().has_projection,
      files.front().projection};
  const double relative = final_loss / dec.pef_sq_norm();
  if (rank == 0) {
    io::File file = io::File::create(o.out);
    nlohmann::json provenance = nlohmann::json::parse(config);
    provenance["command"] = "decompose";
    provenance["device"] = g.device;
    io::write_header(file, {"npeff.decomposition", 1}, provenance);
    decomposition::write_decomposition(file, a, data, final_loss, relative);
    file.commit();
    std::remove(ckpt_path.c_str());
  }
  comm.barrier();
  if (rank != 0) return 0;
  const double secs = elapsed() - seconds_before;
  const nlohmann::json summary = {
      {"command", "decompose"},
      {"output", o.out},
      {"examples", total},
      {"components", a.components},
      {"steps", total_steps},
      {"final_loss", final_loss},
      {"relative_loss", relative},
      {"processes", size},
      {"seconds", secs},
      {"ms_per_step", total_steps > start ? 1e3 * secs / (total_steps - start) : 0.0}};
  return report_success(o.out, summary, o.json);
}

}  // namespace

void add_decompose_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<DecomposeCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "decompose",
      "Decompose PEFs into C non-negative rank-1 components (paper Algorithm 1, Appendix C):\n"
      "G_i^T G_i ~ sum_j W_ij h_j h_j^T. H-only steps first, then joint steps (multiplicative W,\n"
      "gradient H). Writes W [examples, C], unit-norm H [C, d] and the loss history. Resumable:\n"
      "a checkpoint OUT.ckpt is written every --checkpoint-every steps and picked up by a rerun\n"
      "of the same command. Data-parallel over processes under mpirun/srun (examples split,\n"
      "one all-reduce of the H-gradient per step).\n"
      "Examples:\n"
      "  npeff decompose --pefs sst2.pefs.h5 --components 512 --out sst2.npeff.h5\n"
      "  mpirun -np 4 npeff decompose --pefs shard0.h5 shard1.h5 --components 512 --out d.h5\n"
      "  npeff --device cuda decompose --pefs p.h5 -C 128 --steps 500 --lr 1e-3 --out d.h5 --json");
  sub->add_option("--pefs,-p", o->pefs, "Input PEF files (npeff.pefs), in order")
      ->required()
      ->expected(1, -1);
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_option("--components,-C", o->algo.components, "Number of components C")->required();
  sub->add_option("--h-only-steps", o->algo.h_only_steps, "Steps updating only H")
      ->capture_default_str();
  sub->add_option("--h-only-lr", o->algo.h_only_lr, "Learning rate of the H-only steps")
      ->capture_default_str();
  sub->add_option("--steps", o->algo.steps, "Joint steps")->capture_default_str();
  sub->add_option("--lr", o->algo.lr, "Learning rate of the joint steps")->capture_default_str();
  sub->add_option("--seed", o->algo.seed, "Initialisation seed")->capture_default_str();
  sub->add_option("--log-every", o->algo.log_every, "Record the loss every N steps")
      ->capture_default_str();
  sub->add_option("--checkpoint-every", o->checkpoint_every, "Checkpoint every N steps (0: never)")
      ->capture_default_str();
  sub->add_option("--compute-dtype", o->compute_dtype,
                  "Precision of the two large products: fp32 | tf32 (CUDA) | bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  sub->add_option("--storage-dtype", o->storage_dtype,
                  "In-memory precision of G: fp32 | fp16 | bf16 (upcast per block)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  sub->add_flag("--out-of-core", o->out_of_core,
                "Stream G from the PEF files every step instead of holding it in memory");
  sub->add_option("--block-examples", o->block_examples, "Examples per block with --out-of-core")
      ->capture_default_str();
  sub->add_flag("--drop-nonfinite", o->drop_nonfinite, "Leave out PEFs with NaN/Inf entries");
  sub->add_flag("--drop-zero", o->drop_zero, "Leave out all-zero PEFs");
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_decompose(*o, global); }; });
}

}  // namespace npeff::cli
