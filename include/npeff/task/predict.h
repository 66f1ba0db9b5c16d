// Zero-shot predictions of a task (npeff predict): the distribution p(y|x) a task defines
// (task.h), per example, batched.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "npeff/model/causal_lm.h"
#include "npeff/task/task.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::task {

// The file npeff predict --out writes (docs/formats.md). Version 2 keeps gold labels in /labels
// and the label names in /label_names, as npeff.pefs does; version 1 (still read) had them in
// /label and /labels.
constexpr const char* kPredictionsSchema = "npeff.predictions";
constexpr int64_t kPredictionsSchemaVersion = 2;

// Token ids of each label (label_prefix + label, no special tokens). For label-tokens tasks
// only the first id is used, so first ids must differ: npeff::Error names both labels otherwise.
std::vector<std::vector<int32_t>> label_token_ids(const Task& task,
                                                  const tokenizer::Tokenizer& tokenizer);

struct Predictions {
  at::Tensor probs;       // float32 [m, r]: p over labels (vocab tasks: the top-r tokens' p)
  at::Tensor prediction;  // int64 [m]: argmax label (vocab tasks: argmax token id)
  at::Tensor top_ids;     // vocab tasks: int64 [m, r] token ids of `probs`; else undefined
};

// `on_batch(done)` (optional) reports progress.
Predictions predict(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                    const Task& task, const std::vector<Example>& examples, int64_t batch_size,
                    const std::function<void(int64_t)>& on_batch = nullptr, int64_t vocab_top = 10);

}  // namespace npeff::task
