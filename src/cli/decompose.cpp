// npeff decompose: the NPEFF decomposition (Algorithm 1) of one or more PEF files, on CPU or GPU,
// in one process or data-parallel over MPI ranks, checkpointed and resumable.
#include <nlohmann/json.hpp>

#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/core/paths.h"
#include "npeff/decomposition/decompose_job.h"
#include "npeff/decomposition/decomposition.h"
#include "npeff/dist/communicator.h"

namespace npeff::cli {
namespace {

struct DecomposeCliOptions {
  std::vector<std::string> pefs;         ///< input npeff.pefs files (required), in order
  std::string out;                       ///< output npeff.decomposition file (required)
  decomposition::DecomposeOptions algo;  ///< components, steps, learning rates, seed
  std::int64_t checkpoint_every = 500;   ///< steps between checkpoints; 0 = none
  bool drop_nonfinite = false;           ///< drop PEFs with NaN/Inf instead of refusing
  bool drop_zero = false;                ///< drop all-zero PEFs instead of refusing
  std::string compute_dtype = "fp32";    ///< fp32 | tf32 | bf16 for the two large products
  std::string storage_dtype = "fp32";    ///< fp32 | fp16 | bf16: in-memory copy of G
  bool out_of_core = false;              ///< stream G from the files every step
  std::int64_t block_examples = 4096;    ///< examples per streamed block (--out-of-core)
  std::int64_t max_block_bytes = 0;      ///< in memory: a block's temporaries (0: automatic)
  std::int64_t total_steps = -1;         ///< H-only + joint steps; -1: use algo.steps
  bool json = false;                     ///< JSON summary on stdout
};

int run_decompose(const DecomposeCliOptions& o, const GlobalOptions& g) {
  PathCheck inputs;
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  decomposition::DecomposeJobOptions job;
  job.pefs = o.pefs;
  job.out = o.out;
  job.algo = o.algo;
  job.checkpoint_every = o.checkpoint_every;
  job.drop_nonfinite = o.drop_nonfinite;
  job.drop_zero = o.drop_zero;
  job.compute_dtype = o.compute_dtype;
  job.storage_dtype = o.storage_dtype;
  job.out_of_core = o.out_of_core;
  job.block_examples = o.block_examples;
  job.max_block_bytes = o.max_block_bytes;
  job.device = g.device;
  dist::Communicator& comm = dist::world();
  const decomposition::DecomposeJobSummary s = decomposition::run_decompose_job(job, comm);
  if (comm.rank() != 0) return 0;
  const std::int64_t ran = s.steps - s.resumed_at;
  const nlohmann::json summary = {{"command", "decompose"},
                                  {"output", o.out},
                                  {"examples", s.examples},
                                  {"components", o.algo.components},
                                  {"steps", s.steps},
                                  {"resumed_at", s.resumed_at},
                                  {"final_loss", s.final_loss},
                                  {"relative_loss", s.relative_loss},
                                  {"processes", s.processes},
                                  {"seconds", s.seconds},
                                  {"ms_per_step", ran > 0 ? 1e3 * s.seconds / ran : 0.0}};
  return report_success(o.out, summary, o.json);
}

}  // namespace

void add_decompose_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<DecomposeCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "decompose",
      "Decompose PEFs into C non-negative rank-1 components (paper Algorithm 1, Appendix C):\n"
      "G_i^T G_i ~ sum_j W_ij h_j h_j^T. H-only steps first, then joint steps (multiplicative W,\n"
      "gradient H); --steps counts the joint steps only, --total-steps both. Writes W\n"
      "[examples, C], unit-norm H [C, d] and the loss history. Resumable: a checkpoint\n"
      "OUT.partial.d/checkpoint.h5 is replaced every --checkpoint-every steps and picked up by a\n"
      "rerun of the same command (other settings are refused).\n"
      "Data-parallel over processes under mpirun/srun (examples split, one all-reduce of the\n"
      "H-gradient per step).\n"
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
  auto* steps =
      sub->add_option("--steps", o->algo.steps, "Joint (W and H) steps, after the --h-only-steps")
          ->capture_default_str();
  sub->add_option("--total-steps", o->total_steps,
                  "All steps: --h-only-steps plus joint steps (sets --steps to the difference)")
      ->excludes(steps);
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
  sub->add_option("--max-block-bytes", o->max_block_bytes,
                  "In memory: device bytes for one block of examples' temporaries in a step\n"
                  "(B, B o B, E, upcasts); larger data is processed in blocks of that size\n"
                  "(0: 128 MiB on the CPU, 1 GiB on a GPU)")
      ->capture_default_str();
  sub->add_flag("--drop-nonfinite", o->drop_nonfinite, "Leave out PEFs with NaN/Inf entries");
  sub->add_flag("--drop-zero", o->drop_zero, "Leave out all-zero PEFs");
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &global, &runner] {
    if (o->total_steps >= 0) {
      NPEFF_CHECK(o->total_steps >= o->algo.h_only_steps, "--total-steps ", o->total_steps,
                  " is fewer than --h-only-steps ", o->algo.h_only_steps);
      o->algo.steps = o->total_steps - o->algo.h_only_steps;
    }
    runner = [o, &global] { return run_decompose(*o, global); };
  });
}

}  // namespace npeff::cli
