#include "npeff/task/task_batch.h"

#include <ATen/ATen.h>

#include "npeff/core/error.h"

namespace npeff::task {

TaskBatch make_task_batch(const Task& task, const tokenizer::Tokenizer& tokenizer,
                          const std::vector<std::vector<int32_t>>& labels,
                          const std::vector<Example>& examples, int64_t context) {
  NPEFF_CHECK(!examples.empty(), "make_task_batch: no examples");
  const bool suffixes = task.kind == TaskKind::kSuffixes;
  TaskBatch tb;
  std::vector<std::vector<int32_t>> rows;
  for (const Example& e : examples) {
    std::vector<int32_t> row = tokenizer.encode(e.prompt);
    NPEFF_CHECK(!row.empty(), task.name, " example ", e.id, ": the prompt has no tokens");
    tb.prompt_tokens.push_back(static_cast<int64_t>(row.size()));
    int64_t longest = static_cast<int64_t>(row.size());
    if (suffixes) {
      int64_t longest_label = 0;
      for (const auto& l : labels) {
        row.insert(row.end(), l.begin(), l.end());
        longest_label = std::max<int64_t>(longest_label, static_cast<int64_t>(l.size()));
      }
      longest += longest_label;  // the furthest position a suffix token reaches
    }
    NPEFF_CHECK(longest <= context, task.name, " example ", e.id, " needs ", longest,
                " token positions, more than the model's context (", context,
                "); shorten it or drop it with --start/--max-examples");
    rows.push_back(std::move(row));
    tb.batch.group_ids.push_back(e.id);
  }
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  for (const auto& r : rows) T = std::max<int64_t>(T, static_cast<int64_t>(r.size()));
  at::Tensor ids = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
  auto a = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    for (size_t t = 0; t < rows[b].size(); ++t) {
      a[b][static_cast<int64_t>(t)] = rows[b][t];
      m[b][static_cast<int64_t>(t)] = 1;
    }
  }
  tb.batch.input_ids = ids;
  tb.batch.attention_mask = mask;
  if (!suffixes) return tb;

  // Prompt tokens attend causally among themselves; suffix l's token j attends to the whole
  // prompt and to suffix l's tokens 0..j, at position prompt + j. Its log-prob is read where the
  // token before it in that sequence sits: the last prompt token for j = 0.
  at::Tensor positions = at::zeros({B, T}, at::kLong);
  at::Tensor allowed = at::zeros({B, T, T}, at::kBool);
  auto pos = positions.accessor<int64_t, 2>();
  auto ok = allowed.accessor<bool, 3>();
  const int64_t r = static_cast<int64_t>(labels.size());
  std::vector<int64_t> predict_at, target, owner;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t P = tb.prompt_tokens[b];
    for (int64_t t = 0; t < P; ++t) {
      pos[b][t] = t;
      for (int64_t s = 0; s <= t; ++s) ok[b][t][s] = true;
    }
    int64_t start = P;
    for (int64_t l = 0; l < r; ++l) {
      const int64_t len = static_cast<int64_t>(labels[l].size());
      for (int64_t j = 0; j < len; ++j) {
        const int64_t t = start + j;
        pos[b][t] = P + j;
        for (int64_t s = 0; s < P; ++s) ok[b][t][s] = true;
        for (int64_t s = start; s <= t; ++s) ok[b][t][s] = true;
        predict_at.push_back(b * T + (j == 0 ? P - 1 : t - 1));
        target.push_back(labels[l][j]);
        owner.push_back(b * r + l);
      }
      start += len;
    }
    for (int64_t t = start; t < T; ++t) ok[b][t][t] = true;  // padding: itself only
  }
  tb.batch.layout.positions = positions;
  tb.batch.layout.allowed = allowed;
  tb.predict_at = at::tensor(predict_at, at::kLong);
  tb.target = at::tensor(target, at::kLong);
  tb.owner = at::tensor(owner, at::kLong);
  return tb;
}

at::Tensor class_log_probs(const Task& task, const std::vector<std::vector<int32_t>>& labels,
                           const TaskBatch& tb, const model::ModelOutputs& outputs) {
  const at::Tensor& hidden = outputs.hidden();
  const at::Device dev = hidden.device();
  const int64_t B = hidden.size(0), T = hidden.size(1);
  if (task.kind == TaskKind::kSuffixes) {
    // Label score = sum over its tokens of log p(token | prompt, earlier label tokens); p over
    // labels = softmax of the scores (Appendix D, CLINC150).
    const int64_t r = static_cast<int64_t>(labels.size());
    const at::Tensor at_rows = tb.predict_at.to(dev);
    const at::Tensor lp = at::log_softmax(
        outputs.logits_at(at_rows.div(T, "floor"), at_rows.remainder(T)), -1);  // [N, V]
    const at::Tensor token_lp = lp.gather(1, tb.target.to(dev).view({-1, 1})).squeeze(1);
    const at::Tensor scores = at::zeros({B * r}, token_lp.options())
                                  .index_add(0, tb.owner.to(dev), token_lp)
                                  .view({B, r});
    return at::log_softmax(scores, -1);
  }
  const at::Tensor last = model::last_token_positions(tb.batch.attention_mask).to(dev);
  const at::Tensor logits = outputs.logits_at(at::arange(B, last.options()), last);  // [B, V]
  if (task.kind == TaskKind::kVocab) return at::log_softmax(logits, -1);
  // Label-tokens: the labels' first-token logits, renormalised (Appendix D, SST-2).
  std::vector<int64_t> first;
  for (const auto& l : labels) first.push_back(l[0]);
  return at::log_softmax(logits.index_select(1, at::tensor(first, at::kLong).to(dev)), -1);
}

at::Tensor final_prompt_hidden(const TaskBatch& tb, const model::ModelOutputs& outputs) {
  const at::Tensor hidden = outputs.hidden().detach();
  const int64_t B = hidden.size(0), T = hidden.size(1);
  const at::Tensor last = at::tensor(tb.prompt_tokens, at::kLong).to(hidden.device()) - 1;
  return hidden.reshape({B * T, -1})
      .index_select(0, at::arange(B, last.options()) * T + last)
      .to(at::kFloat);
}

}  // namespace npeff::task
