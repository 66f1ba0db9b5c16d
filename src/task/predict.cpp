#include "npeff/task/predict.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "npeff/core/error.h"
#include "npeff/model/per_example_grad.h"
#include "npeff/task/task_batch.h"

namespace npeff::task {

std::vector<std::vector<int32_t>> label_token_ids(const Task& task,
                                                  const tokenizer::Tokenizer& tokenizer) {
  tokenizer::EncodeOptions plain;
  plain.add_special_tokens = false;
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& label : task.labels) {
    ids.push_back(tokenizer.encode(task.label_prefix + label, plain));
    NPEFF_CHECK(!ids.back().empty(), task.name, ": label '", label, "' tokenizes to nothing");
  }
  if (task.kind == TaskKind::kLabelTokens) {
    for (size_t a = 0; a < ids.size(); ++a) {
      for (size_t b = a + 1; b < ids.size(); ++b) {
        NPEFF_CHECK(ids[a][0] != ids[b][0], task.name, ": labels '", task.labels[a], "' and '",
                    task.labels[b], "' start with the same token ", ids[a][0], " ('",
                    tokenizer.piece(ids[a][0]),
                    "'): a label-tokens task needs distinct first tokens (use kind suffixes)");
      }
    }
  }
  return ids;
}

Predictions predict(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                    const Task& task, const std::vector<Example>& examples, int64_t batch_size,
                    const std::function<void(int64_t)>& on_batch, int64_t vocab_top) {
  NPEFF_CHECK(batch_size > 0, "--batch-size must be positive");
  torch::autograd::AutoGradMode no_grad(false);
  const auto labels = task.kind == TaskKind::kVocab ? std::vector<std::vector<int32_t>>{}
                                                    : label_token_ids(task, tokenizer);
  const int64_t m = static_cast<int64_t>(examples.size());
  const int64_t r = task.kind == TaskKind::kVocab ? vocab_top : static_cast<int64_t>(labels.size());
  Predictions out;
  out.probs = at::zeros({m, r}, at::kFloat);
  if (task.kind == TaskKind::kVocab) out.top_ids = at::zeros({m, r}, at::kLong);
  for (int64_t start = 0; start < m; start += batch_size) {
    const int64_t n = std::min(batch_size, m - start);
    const std::vector<Example> part(examples.begin() + start, examples.begin() + start + n);
    const TaskBatch tb =
        make_task_batch(task, tokenizer, labels, part, model.config().max_position_embeddings);
    const model::ModelOutputs outputs(
        model,
        model.forward_hidden(tb.batch.input_ids, tb.batch.attention_mask, nullptr,
                             tb.batch.layout_or_null()),
        nullptr);
    const at::Tensor p = at::exp(class_log_probs(task, labels, tb, outputs)).cpu();
    if (task.kind == TaskKind::kVocab) {
      const auto top = p.topk(r, -1);
      out.probs.narrow(0, start, n).copy_(std::get<0>(top));
      out.top_ids.narrow(0, start, n).copy_(std::get<1>(top));
    } else {
      out.probs.narrow(0, start, n).copy_(p);
    }
    if (on_batch) on_batch(start + n);
  }
  out.prediction =
      task.kind == TaskKind::kVocab ? out.top_ids.select(1, 0).clone() : out.probs.argmax(1);
  return out;
}

}  // namespace npeff::task
