#include "npeff/decomposition/decompose_job.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/dist/communicator.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/pef_source.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"

namespace npeff::decomposition {
namespace {

// Seconds between info-level loss lines (the rest go to debug).
constexpr double kLossInfoSeconds = 10.0;
// Blow-up rule: a logged loss above this multiple of the first one logged in this run. The
// normalised PEFs bound the loss of W = 0 by sum_i ||G_i^T G_i||^2, and Algorithm 1 only lowers it
// from the initialisation when the learning rate is sane; 100x is far outside normal noise.
constexpr double kBlowUpFactor = 100.0;

// Stops a diverging run (docs/decomposition.md, "Divergence"): a non-finite logged loss, or one
// above kBlowUpFactor x the first logged loss, throws DivergedError naming the step, the learning
// rate and what to do. The checkpoint on disk is the last one written before, never a bad state.
class DivergenceGuard {
 public:
  void check(std::int64_t step, double loss, const char* lr_flag, double lr,
             const std::string& checkpoint) {
    if (first_ < 0 && std::isfinite(loss)) first_ = loss;
    const bool blown = first_ > 0 && loss > kBlowUpFactor * first_;
    if (std::isfinite(loss) && !blown) return;
    throw DivergedError(detail::concat(
        "decompose diverged at step ", step, ": loss ", loss,
        blown ? detail::concat(" > ", kBlowUpFactor, " x the first logged loss ", first_) : "",
        " with ", lr_flag, " ", lr, ". Rerun with a smaller ", lr_flag, " (e.g. ", lr / 10,
        ") or more --h-only-steps. ",
        checkpoint.empty() ? std::string("No checkpoint was written before it.")
                           : "The last good checkpoint is kept: " + checkpoint +
                                 " (delete its folder to start over with other settings)."));
  }

 private:
  double first_ = -1;
};

constexpr const char* kCheckpoint = "checkpoint.h5";
// float32 bytes of PEFs read per block when loading into memory.
constexpr std::int64_t kLoadBlockBytes = std::int64_t{64} << 20;

// Examples per block of a step in memory (Decomposer::set_block_examples): the device
// temporaries of one block, B, B o B and E as float32 [count r, C], plus the float32 upcast of a
// float16/bfloat16 block and the bfloat16 copy for --compute-dtype bf16 (r n each per example),
// stay within --max-block-bytes. A block as large as the data is one block: the same bits.
// --max-block-bytes 0 (the default) is 128 MiB on the CPU, where the block's temporaries add to
// the host peak, and 1 GiB on a GPU, where larger products run closer to peak speed.
std::int64_t memory_block_examples(const DecomposeJobOptions& o, std::int64_t r, std::int64_t n) {
  std::int64_t per_example = 3 * r * o.algo.components * 4;
  if (o.storage_dtype != "fp32") per_example += r * n * 4;
  if (o.compute_dtype == "bf16") per_example += r * n * 2;
  const bool gpu = o.device.rfind("cuda", 0) == 0;
  const std::int64_t budget = o.max_block_bytes > 0 ? o.max_block_bytes
                              : gpu                 ? std::int64_t{1} << 30
                                                    : std::int64_t{128} << 20;
  return std::max<std::int64_t>(1, budget / per_example);
}

// Everything that determines the result, bit for bit: the io::ResumeDir settings.
nlohmann::json settings_json(const DecomposeJobOptions& o,
                             const std::vector<io::PefFileInfo>& files, int processes) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& f : files) {
    nlohmann::json e = io::file_fingerprint(f.path);
    e["examples"] = f.examples;
    e["rank"] = f.rank;
    e["dim"] = f.dim;
    inputs.push_back(e);
  }
  return {{"pefs", inputs},
          {"components", o.algo.components},
          {"h_only_steps", o.algo.h_only_steps},
          {"h_only_lr", o.algo.h_only_lr},
          {"steps", o.algo.steps},
          {"lr", o.algo.lr},
          {"seed", o.algo.seed},
          {"log_every", o.algo.log_every},
          {"drop_nonfinite", o.drop_nonfinite},
          {"drop_zero", o.drop_zero},
          {"compute_dtype", o.compute_dtype},
          {"storage_dtype", o.storage_dtype},
          {"out_of_core", o.out_of_core},
          {"block_examples", o.out_of_core
                                 ? o.block_examples  // summation order
                                 : memory_block_examples(o, files.front().rank, files.front().dim)},
          {"device", o.device},
          {"processes", processes}};
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
  std::unique_ptr<PefSource> source;
  at::Tensor ids;      // example ids of the local rows
  std::int64_t total;  // examples over all processes (after drops)
  std::int64_t first;  // global index of the first local row
};

// Refuses (or drops, when asked and in memory) non-finite and all-zero PEFs, collectively so
// that every process agrees; returns the mask of rows to keep.
at::Tensor check_bad(const DecomposeJobOptions& o, dist::Communicator& comm,
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

Local prepare(const DecomposeJobOptions& o, const std::vector<io::PefFileInfo>& files,
              std::int64_t total_in, dist::Communicator& comm, const c10::Device& dev) {
  std::int64_t first_in = 0, count_in = 0;
  dist::partition(total_in, comm.rank(), comm.size(), first_in, count_in);
  if (o.out_of_core) {
    auto source =
        std::make_unique<io::FilePefSource>(files, first_in, count_in, dev, o.block_examples);
    check_bad(o, comm, source->nonfinite(), source->zero(), source->example_ids());
    at::Tensor ids = source->example_ids();
    return {std::move(source), ids, total_in, first_in};
  }
  // In memory with a bounded host peak (docs/decomposition.md, "Memory"): blocks of at most
  // kLoadBlockBytes of float32 are read, checked, normalised in float32 and cast to the storage
  // dtype on the host, then copied into the one full-size tensor on the device. Host peak: that
  // tensor when the device is the CPU (nothing on a GPU) plus ~3 blocks; no full-size float32,
  // mask or index copy.
  const std::int64_t r = files.front().rank, d = files.front().dim;
  const at::ScalarType storage = o.storage_dtype == "fp16"   ? at::kHalf
                                 : o.storage_dtype == "bf16" ? at::kBFloat16
                                                             : at::kFloat;
  const std::int64_t block = std::max<std::int64_t>(1, kLoadBlockBytes / (r * d * 4));
  at::Tensor dest;
  try {
    dest = at::empty({count_in, r, d}, at::TensorOptions().dtype(storage).device(dev));
  } catch (const c10::Error&) {
    NPEFF_FAIL("cannot allocate ", count_in * r * d * at::elementSize(storage) / 1e9,
               " GB for this process's PEFs in memory (", count_in, " x ", r, " x ", d, ", ",
               o.storage_dtype, ", on ", dev.str(),
               "): use --out-of-core, --storage-dtype fp16, "
               "or more processes (mpirun/srun)");
  }
  at::Tensor ids = at::empty({count_in}, at::kLong);
  at::Tensor nonfinite = at::zeros({count_in}, at::kBool), zero = at::zeros({count_in}, at::kBool);
  std::int64_t kept = 0;
  for (std::int64_t b0 = 0; b0 < count_in; b0 += block) {
    const std::int64_t k = std::min(block, count_in - b0);
    io::PefSet set = io::load_pefs(files, first_in + b0, k);
    const at::Tensor flat = set.pefs.flatten(1);
    const at::Tensor nf = (~at::isfinite(flat)).any(1);
    const at::Tensor z = (flat == 0).all(1) & ~nf;
    nonfinite.narrow(0, b0, k).copy_(nf);
    zero.narrow(0, b0, k).copy_(z);
    ids.narrow(0, b0, k).copy_(set.example_ids);
    const at::Tensor good = ~(nf | z);
    at::Tensor g = good.all().item<bool>() ? set.pefs : set.pefs.index({good});
    normalize_pefs(g);
    dest.narrow(0, kept, g.size(0)).copy_(g.to(storage));
    kept += g.size(0);
  }
  const at::Tensor keep = check_bad(o, comm, nonfinite, zero, ids);
  at::Tensor counts = at::zeros({comm.size()}, at::kLong);
  counts[comm.rank()] = kept;
  comm.allreduce_sum(counts);
  return {memory_source(dest.narrow(0, 0, kept)), ids.masked_select(keep),
          counts.sum().item<std::int64_t>(),
          counts.narrow(0, 0, comm.rank()).sum().item<std::int64_t>()};
}

}  // namespace

DecomposeJobSummary run_decompose_job(const DecomposeJobOptions& o, dist::Communicator& comm) {
  const int rank = comm.rank(), size = comm.size();
  const auto& a = o.algo;
  NPEFF_CHECK(a.components > 0, "--components must be positive");
  NPEFF_CHECK(a.steps >= 0 && a.h_only_steps >= 0, "step counts must be >= 0");
  NPEFF_CHECK(a.lr > 0 && a.h_only_lr > 0, "learning rates must be positive");
  NPEFF_CHECK(a.log_every > 0, "--log-every must be positive");
  NPEFF_CHECK(o.checkpoint_every >= 0, "--checkpoint-every must be >= 0");
  NPEFF_CHECK(!o.out_of_core || o.block_examples > 0, "--block-examples must be positive");
  NPEFF_CHECK(o.max_block_bytes >= 0, "--max-block-bytes must be >= 0 (0: automatic), got ",
              o.max_block_bytes);
  const c10::Device dev = select_device(o.device);

  const std::vector<io::PefFileInfo> files = io::read_compatible_pef_infos(o.pefs);
  std::int64_t total_in = 0;
  for (const auto& f : files) total_in += f.examples;
  // Refuse a working folder of other settings before loading anything.
  io::ResumeDir resume(o.out, settings_json(o, files, size), /*writer=*/rank == 0);
  Local local = prepare(o, files, total_in, comm, dev);
  const std::int64_t total = local.total, first = local.first;
  const at::Tensor ids = local.ids;
  Decomposer dec(std::move(local.source), a.components, comm, local.total, local.first);
  dec.set_block_examples(o.out_of_core ? o.block_examples
                                       : memory_block_examples(o, dec.rank(), dec.dim()));
  dec.set_compute_dtype(parse_compute_dtype(o.compute_dtype));

  LossHistory history;
  std::int64_t start = 0;
  double seconds_before = 0;
  if (resume.has(kCheckpoint)) {
    const Checkpoint ck = read_checkpoint(resume.open(kCheckpoint));
    NPEFF_CHECK(ck.w.size(0) == total && ck.h.size(0) == a.components && ck.h.size(1) == dec.dim(),
                resume.path(kCheckpoint), " holds W ", ck.w.sizes(), " and H ", ck.h.sizes(),
                ", this run needs [", total, ", ", a.components, "] and [", a.components, ", ",
                dec.dim(), "]: delete ", resume.dir(), " to start over");
    dec.set_state(ck.w.narrow(0, first, dec.examples()), ck.h);
    start = ck.next_step;
    history = ck.loss;
    seconds_before = history.seconds.empty() ? 0 : history.seconds.back();
    if (rank == 0) log::info("resuming ", resume.path(kCheckpoint), " at step ", start);
  } else {
    dec.initialize(a.seed);
  }

  const std::int64_t total_steps = a.h_only_steps + a.steps;
  const auto t0 = std::chrono::steady_clock::now();
  const auto run_seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  DivergenceGuard guard;
  const auto save_checkpoint = [&](std::int64_t next_step) {
    // Never replace a good checkpoint with a diverged state (the loss is only checked at logged
    // steps): every rank's W and the shared H must be finite.
    at::Tensor bad = (~at::isfinite(dec.w())).any().to(at::kLong).cpu().reshape({1}) +
                     (~at::isfinite(dec.h())).any().to(at::kLong).cpu().reshape({1});
    comm.allreduce_sum(bad);
    if (bad.item<std::int64_t>() > 0)
      guard.check(next_step - 1, std::nan(""), a.h_only_steps >= next_step ? "--h-only-lr" : "--lr",
                  a.h_only_steps >= next_step ? a.h_only_lr : a.lr,
                  resume.has(kCheckpoint) ? resume.path(kCheckpoint) : std::string());
    const Checkpoint c{next_step, gather_rows(comm, dec.w(), first, total), dec.h().cpu(), history};
    if (rank == 0) {
      io::File f = resume.create(kCheckpoint);
      write_checkpoint(f, c);
      f.commit();  // replaces the previous checkpoint atomically
    }
    comm.barrier();
  };
  Progress progress("decompose", total_steps - start, "steps", rank == 0 ? 2.0 : 1e30);
  double last_info = -1e30;
  for (std::int64_t t = start; t < total_steps; ++t) {
    const bool joint = t >= a.h_only_steps;
    const double lr = joint ? a.lr : a.h_only_lr;
    double loss = 0;
    const bool log_loss = t % a.log_every == 0;
    dec.step(joint, lr, log_loss ? &loss : nullptr);
    if (log_loss) {
      // The loss is summed over all ranks, so every rank takes the same decision here.
      guard.check(t, loss, joint ? "--lr" : "--h-only-lr", lr,
                  resume.has(kCheckpoint) ? resume.path(kCheckpoint) : std::string());
      history.steps.push_back(t);
      history.values.push_back(loss);
      history.seconds.push_back(seconds_before + run_seconds());
      if (rank == 0 && run_seconds() - last_info >= kLossInfoSeconds) {
        log::info("decompose: step ", t, "/", total_steps, (joint ? " joint" : " H-only"), " loss ",
                  loss, " (relative ", loss / dec.pef_sq_norm(), ")");
        last_info = run_seconds();
      } else if (rank == 0) {
        log::debug("step ", t, " loss ", loss);
      }
    }
    progress.advance(1);
    if (o.checkpoint_every > 0 && (t + 1) % o.checkpoint_every == 0 && t + 1 < total_steps)
      save_checkpoint(t + 1);
  }
  const double final_loss = dec.loss();
  guard.check(total_steps, final_loss, "--lr", a.lr,
              resume.has(kCheckpoint) ? resume.path(kCheckpoint) : std::string());
  history.steps.push_back(total_steps);
  history.values.push_back(final_loss);
  history.seconds.push_back(seconds_before + run_seconds());
  if (rank == 0) progress.finish();
  dec.normalize_components();

  const DecompositionData data{gather_rows(comm, dec.w(), first, total),
                               dec.h().cpu(),
                               gather_rows(comm, ids.unsqueeze(1), first, total).squeeze(1),
                               history,
                               files.front().has_projection,
                               files.front().projection};
  const double relative = final_loss / dec.pef_sq_norm();
  if (rank == 0) {
    io::File file = io::File::create(o.out);
    nlohmann::json provenance = resume.settings();
    provenance["command"] = "decompose";
    io::write_header(file, {"npeff.decomposition", 1}, provenance);
    write_decomposition(file, a, data, final_loss, relative);
    file.commit();
    resume.finish();  // only after OUT is in place
  }
  comm.barrier();
  DecomposeJobSummary s;
  s.examples = total;
  s.steps = total_steps;
  s.resumed_at = start;
  s.processes = size;
  s.final_loss = final_loss;
  s.relative_loss = relative;
  s.seconds = run_seconds();
  return s;
}

}  // namespace npeff::decomposition
