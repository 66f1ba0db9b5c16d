// Training a small Llama-family classifier from scratch (for the ground-truth benchmark,
// docs/ground-truth.md): parameters drawn at random, then Adam on -log p(gold label | prompt)
// with p exactly as predict and compute-pefs define it (task/task_batch.h). Saved as a Hugging
// Face model directory (config.json, model.safetensors, tokenizer.json) that every npeff
// subcommand loads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "npeff/model/causal_lm.h"
#include "npeff/model/config.h"
#include "npeff/task/task.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::model {

/// Parameters for `config` with HF names: linear weights and embeddings N(0, std^2), norm
/// weights 1, biases 0; drawn from std::mt19937_64(seed) in expected_parameters() order.
std::vector<Parameter> init_parameters(const ModelConfig& config, std::uint64_t seed,
                                       double std = 0.02);

struct TrainOptions {
  std::int64_t steps = 1000;
  std::int64_t batch_size = 32;
  double lr = 3e-3;        ///< Adam, constant after a linear warm-up of steps / 20
  std::uint64_t seed = 0;  ///< batch order
  double clip_norm = 1.0;  ///< global gradient-norm clipping (0: off)
};

struct TrainResult {
  std::vector<std::int64_t> steps;
  std::vector<double> loss;      ///< mean batch loss since the previous record
  std::vector<double> accuracy;  ///< batch accuracy since the previous record
};

/// Trains `model` in place on `examples` (label-tokens or suffixes tasks with gold labels).
/// `on_step(step, loss)` is called after every step.
TrainResult train_classifier(CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                             const task::Task& task, const std::vector<task::Example>& examples,
                             const TrainOptions& options,
                             const std::function<void(std::int64_t, double)>& on_step = {});

/// Writes `dir`/config.json, model.safetensors (float32) and tokenizer.json (`tokenizer_json`
/// copied verbatim); atomically (dir.partial, then rename).
void save_hf_model(const CausalLM& model, const std::string& tokenizer_json,
                   const std::string& dir);

}  // namespace npeff::model
