// A batch of a task's examples laid out for the model, and the task's distribution p(y|x) over
// its categories computed from the model's outputs (paper Appendix D). Shared by predict and
// compute-pefs so that both see exactly the same p.
//
// Layouts: label-tokens and vocab tasks put one prompt per row. Suffix tasks put, per example,
// one row holding the prompt once followed by every label's tokens; a TokenLayout lets each
// suffix attend to the prompt and to its own earlier tokens at the positions it would have
// right after the prompt, so the prompt is computed once instead of once per label.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "npeff/model/per_example_grad.h"
#include "npeff/task/task.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::task {

struct TaskBatch {
  model::GradientBatch batch;  // right-padded rows, one per example; group_ids = example ids
  std::vector<int64_t> prompt_tokens;  // per example
  // Suffix tasks: for every label token, the flat index (row * T + position) of the position
  // predicting it, the token, and the (example * r + label) it belongs to.
  at::Tensor predict_at, target, owner;
};

// Builds the batch for `examples` (prompts tokenized with the tokenizer's special tokens).
// `labels`: label_token_ids(task, tokenizer). Rows longer than `context` tokens are refused
// with a message naming the example.
TaskBatch make_task_batch(const Task& task, const tokenizer::Tokenizer& tokenizer,
                          const std::vector<std::vector<int32_t>>& labels,
                          const std::vector<Example>& examples, int64_t context);

// log p(y|x), float32 [G, r] (r = labels; vocab tasks: the vocabulary), differentiable.
at::Tensor class_log_probs(const Task& task, const std::vector<std::vector<int32_t>>& labels,
                           const TaskBatch& batch, const model::ModelOutputs& outputs);

// Final hidden state at each example's last prompt token, [G, hidden] (float32, detached).
at::Tensor final_prompt_hidden(const TaskBatch& batch, const model::ModelOutputs& outputs);

}  // namespace npeff::task
