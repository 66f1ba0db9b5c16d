// compute-pefs throughput against its floor, measured in the same run on the same batches: the
// floor is the per-example gradient engine's batched forward + k batched backward passes alone
// (what any per-example method must pay); the rest is the per-example contraction, the sparse
// projection of the rows, SVD and normalisation. Reports examples/s, the ratio to the floor and
// the share of time spent in the projection.
//   bench_compute_pefs --model PATH --task CONFIG [--params P] [--pef exact|expectation|gradient]
//       [--eps K] [--top-k K] [--proj-dim 4096] [--batch 8] [--batches 4] [--start 0]
//       [--threads N] [--device cpu|cuda] [--tokenizer FILE (instead of the model's own)]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <iostream>

#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/runtime.h"
#include "npeff/model/loader.h"
#include "npeff/pef/compute.h"

using namespace npeff;

int main(int argc, char** argv) {
  tune_openmp_wait_policy(argv);
  std::string model_path, task_path, params, pef = "exact", device = "cpu", tokenizer;
  int64_t eps = 0, top_k = 0, proj_dim = 4096, batch = 8, batches = 4, start = 0;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model_path = v;
    else if (a == "--task")
      task_path = v;
    else if (a == "--params")
      params = v;
    else if (a == "--pef")
      pef = v;
    else if (a == "--eps")
      eps = std::stoll(v);
    else if (a == "--top-k")
      top_k = std::stoll(v);
    else if (a == "--proj-dim")
      proj_dim = std::stoll(v);
    else if (a == "--batch")
      batch = std::stoll(v);
    else if (a == "--batches")
      batches = std::stoll(v);
    else if (a == "--start")
      start = std::stoll(v);
    else if (a == "--threads")
      threads = std::stoi(v);
    else if (a == "--device")
      device = v;
    else if (a == "--tokenizer")
      tokenizer = v;
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  try {
    log::configure(std::getenv("NPEFF_LOG") ? std::getenv("NPEFF_LOG") : "warn");
    set_num_threads(threads);
    const model::LoadedModel loaded = model::load_model(model_path, {tokenizer, true});
    NPEFF_CHECK(loaded.tokenizer, "the model has no tokenizer");
    const c10::Device dev = select_device(device);
    if (dev.is_cuda()) loaded.model->to(dev, at::kFloat);
    const task::Task task = task::Task::load(task_path);
    const auto selection = model::ParameterSelection::parse(*loaded.model, params);
    const projection::Projection proj({0, proj_dim, 0, projection::Kind::kSparse});
    pef::PefOptions o;
    o.kind = pef::parse_pef_kind(pef);
    o.eps = eps;
    o.top_k = top_k;
    const pef::PefComputer computer(*loaded.model, *loaded.tokenizer, task, selection, proj, o);
    const std::vector<task::Example> ex = task::load_examples(task, start, batch * (batches + 1));
    NPEFF_CHECK(static_cast<int64_t>(ex.size()) == batch * (batches + 1), "not enough examples");
    // One warm-up batch, then `batches` timed ones.
    computer.compute(std::vector<task::Example>(ex.begin(), ex.begin() + batch));
    pef::PefTimings sum;
    for (int64_t b = 1; b <= batches; ++b) {
      const pef::PefBatch r = computer.compute(
          std::vector<task::Example>(ex.begin() + b * batch, ex.begin() + (b + 1) * batch));
      sum.forward_backward += r.timings.forward_backward;
      sum.contraction += r.timings.contraction;
      sum.projection += r.timings.projection;
      sum.total += r.timings.total;
    }
    const double n = static_cast<double>(batch * batches);
    std::cout << loaded.model->config().summary() << "\n  task " << task.name << " ("
              << task::task_kind_name(task.kind) << "), --pef " << pef << ": " << computer.rows()
              << " rows; " << selection.total() << " parameters in " << selection.slices().size()
              << " tensors -> d = " << proj_dim << "; batch " << batch << " x " << batches
              << ", threads " << at::get_num_threads() << ", " << device << "\n  compute-pefs "
              << n / sum.total << " examples/s (" << sum.total / n
              << " s/example)\n  floor (batched forward + " << computer.rows()
              << " backward passes) " << n / sum.forward_backward
              << " examples/s\n  ratio to floor " << sum.total / sum.forward_backward
              << "x (target <= 1.5x); shares: forward+backward "
              << 100 * sum.forward_backward / sum.total << "%, contraction "
              << 100 * sum.contraction / sum.total << "%, projection "
              << 100 * sum.projection / sum.total << "%, other "
              << 100 * (sum.total - sum.forward_backward - sum.contraction - sum.projection) /
                     sum.total
              << "%\n";
  } catch (const Error& e) {
    std::cerr << "bench_compute_pefs: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
