// Per-example gradient engine vs. the per-example loop (each example alone, autograd with the
// selected parameters as leaves), same model, same batch, same run. Batch: the first B SST-2
// validation sentences tokenized by the model's tokenizer (right-padded), k label objectives
// at the last token.
//   bench_per_example_grad --model PATH [--params P] [--batch 16] [--k 2] [--repeats 3]
//                          [--texts ../shared/data/sst2/validation.tsv] [--threads N]
//                          [--device cpu|cuda] [--tokenizer FILE (instead of the model's own)]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/runtime.h"
#include "npeff/model/loader.h"
#include "npeff/model/per_example_grad.h"

using namespace npeff;

int main(int argc, char** argv) {
  tune_openmp_wait_policy(argv);  // as the npeff binary: no OpenMP spinning against BLAS threads
  std::string model_path, params, texts = "../shared/data/sst2/validation.tsv", device = "cpu",
                                  tokenizer;
  int64_t batch = 16, k = 2, repeats = 3;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model_path = v;
    else if (a == "--params")
      params = v;
    else if (a == "--batch")
      batch = std::stoll(v);
    else if (a == "--k")
      k = std::stoll(v);
    else if (a == "--repeats")
      repeats = std::stoll(v);
    else if (a == "--texts")
      texts = v;
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
    log::configure(std::getenv("NPEFF_LOG") ? std::getenv("NPEFF_LOG") : "info");
    set_num_threads(threads);  // 0 = all cores (LibTorch defaults to 1 here)
    const model::LoadedModel loaded = model::load_model(model_path, {tokenizer, true});
    NPEFF_CHECK(loaded.tokenizer, "the model has no tokenizer");
    const c10::Device dev = select_device(device);
    if (dev.is_cuda()) loaded.model->to(dev, at::kFloat);
    const auto selection = model::ParameterSelection::parse(*loaded.model, params);
    std::ifstream in(texts);
    NPEFF_CHECK(in.good(), "cannot open ", texts);
    std::string line;
    std::getline(in, line);
    std::vector<std::vector<int32_t>> rows;
    size_t longest = 0;
    while (static_cast<int64_t>(rows.size()) < batch && std::getline(in, line)) {
      rows.push_back(
          loaded.tokenizer->encode("Review: " + line.substr(0, line.rfind('\t')) + "\nSentiment:"));
      longest = std::max(longest, rows.back().size());
    }
    model::GradientBatch b;
    b.input_ids = at::zeros({batch, static_cast<int64_t>(longest)}, at::kLong);
    b.attention_mask = at::zeros_like(b.input_ids);
    int64_t tokens = 0;
    for (int64_t r = 0; r < batch; ++r) {
      for (size_t t = 0; t < rows[r].size(); ++t) {
        b.input_ids[r][static_cast<int64_t>(t)] = rows[r][t];
        b.attention_mask[r][static_cast<int64_t>(t)] = 1;
      }
      tokens += static_cast<int64_t>(rows[r].size());
    }
    const at::Tensor targets = at::arange(k, at::kLong).add(100).repeat({batch, 1});
    const auto objectives = model::last_token_log_prob_objectives(targets);
    double checksum = 0;
    const model::GradientConsumer consume = [&](const model::ParameterSlice&, const at::Tensor& g) {
      checksum += g.sum().item<double>();
    };
    const auto time_it = [&](bool loop) {
      double best = 1e30;
      for (int64_t r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        if (loop) {
          model::per_example_gradients_loop(*loaded.model, selection, b, objectives, consume);
        } else {
          model::per_example_gradients(*loaded.model, selection, b, objectives, consume);
        }
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return best;
    };
    double forward = 1e30;  // the floor's first part: one batched forward pass without autograd
    for (int64_t r = 0; r < repeats; ++r) {
      at::NoGradGuard no_grad;
      const auto t0 = std::chrono::steady_clock::now();
      const at::Tensor h = loaded.model->forward_hidden(b.input_ids, b.attention_mask);
      const at::Tensor last = model::last_token_positions(b.attention_mask);
      const at::Tensor rows_at = (at::arange(batch) * h.size(1) + last).to(h.device());
      // Reading one logit back waits for the device's queued work (CUDA runs asynchronously).
      loaded.model->output_logits(h.reshape({-1, h.size(2)}).index_select(0, rows_at))
          .flatten()[0]
          .item<float>();
      forward = std::min(
          forward, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double engine = time_it(false), loop = time_it(true);
    if (const char* trace = std::getenv("NPEFF_PROFILE")) {  // chrome trace of one engine call
      torch::autograd::profiler::RecordProfile guard(trace);
      model::per_example_gradients(*loaded.model, selection, b, objectives, consume);
    }
    std::cout << loaded.model->config().summary() << "\n  selected '" << selection.patterns()
              << "': " << selection.total() << " parameters in " << selection.slices().size()
              << " tensors\n  batch " << batch << " (" << tokens << " tokens, padded to " << longest
              << "), k " << k << ", threads " << at::get_num_threads() << "\n  engine " << engine
              << " s (" << batch / engine << " examples/s), loop " << loop << " s; speed-up "
              << loop / engine << "x (best of " << repeats
              << ")\n  batched forward alone (no autograd): " << forward << " s\n";
  } catch (const Error& e) {
    std::cerr << "bench_per_example_grad: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
