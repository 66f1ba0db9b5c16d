#include "npeff/pef/predict.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "npeff/core/error.h"
#include "npeff/model/per_example_grad.h"

namespace npeff::pef {

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

namespace {
// Right-padded batch of token rows.
std::pair<at::Tensor, at::Tensor> pad_rows(const std::vector<std::vector<int32_t>>& rows) {
  size_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  at::Tensor ids =
      at::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest)}, at::kLong);
  at::Tensor mask = at::zeros_like(ids);
  auto a = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<int64_t, 2>();
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t t = 0; t < rows[r].size(); ++t) {
      a[r][t] = rows[r][t];
      m[r][t] = 1;
    }
  }
  return {ids, mask};
}
}  // namespace

Predictions predict(const model::LlamaModel& model, const tokenizer::Tokenizer& tokenizer,
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
  const int64_t context = model.config().max_position_embeddings;
  // Suffix tasks score every label as a continuation: r rows per example.
  const int64_t per_batch =
      task.kind == TaskKind::kSuffixes ? std::max<int64_t>(1, batch_size / r + 1) : batch_size;
  for (int64_t start = 0; start < m; start += per_batch) {
    const int64_t n = std::min(per_batch, m - start);
    std::vector<std::vector<int32_t>> rows;
    for (int64_t i = start; i < start + n; ++i) {
      const std::vector<int32_t> prompt = tokenizer.encode(examples[i].prompt);
      NPEFF_CHECK(!prompt.empty(), "example ", examples[i].id, ": the prompt has no tokens");
      if (task.kind == TaskKind::kSuffixes) {
        for (const auto& l : labels) {
          std::vector<int32_t> row = prompt;
          row.insert(row.end(), l.begin(), l.end());
          rows.push_back(std::move(row));
        }
      } else {
        rows.push_back(prompt);
      }
      NPEFF_CHECK(static_cast<int64_t>(rows.back().size()) <= context, "example ", examples[i].id,
                  " has ", rows.back().size(), " tokens, more than the model's context (", context,
                  ")");
    }
    const auto [ids, mask] = pad_rows(rows);
    const at::Tensor hidden = model.forward_hidden(ids, mask);
    const int64_t B = ids.size(0), T = ids.size(1);
    if (task.kind == TaskKind::kSuffixes) {
      // Sum over each label's tokens of log p(token | everything before it); logits only at
      // the positions that predict label tokens.
      std::vector<int64_t> flat, target, owner;
      for (int64_t b = 0; b < B; ++b) {
        const auto& l = labels[b % r];
        const int64_t len = static_cast<int64_t>(rows[b].size());
        for (size_t j = 0; j < l.size(); ++j) {
          flat.push_back(b * T + len - static_cast<int64_t>(l.size()) + static_cast<int64_t>(j) -
                         1);
          target.push_back(l[j]);
          owner.push_back(b);
        }
      }
      const at::Tensor lp =
          at::log_softmax(
              model.output_logits(hidden.reshape({B * T, -1})
                                      .index_select(0, at::tensor(flat).to(hidden.device()))),
              -1)
              .cpu();
      const at::Tensor token_lp =
          lp.gather(1, at::tensor(target).view({-1, 1})).squeeze(1).to(at::kDouble);
      const at::Tensor scores =
          at::zeros({B}, at::kDouble).index_add_(0, at::tensor(owner), token_lp);
      out.probs.narrow(0, start, n).copy_(at::softmax(scores.view({n, r}), -1));
    } else {
      const at::Tensor last = model::last_token_positions(mask).to(hidden.device());
      const at::Tensor logits =
          model
              .output_logits(hidden.reshape({B * T, -1})
                                 .index_select(0, at::arange(B, last.options()) * T + last))
              .cpu();  // [n, V]
      if (task.kind == TaskKind::kLabelTokens) {
        std::vector<int64_t> first;
        for (const auto& l : labels) first.push_back(l[0]);
        out.probs.narrow(0, start, n)
            .copy_(at::softmax(logits.index_select(1, at::tensor(first)), -1));
      } else {
        const auto top = at::softmax(logits, -1).topk(r, -1);
        out.probs.narrow(0, start, n).copy_(std::get<0>(top));
        out.top_ids.narrow(0, start, n).copy_(std::get<1>(top));
      }
    }
    if (on_batch) on_batch(start + n);
  }
  out.prediction =
      task.kind == TaskKind::kVocab ? out.top_ids.select(1, 0).clone() : out.probs.argmax(1);
  return out;
}

}  // namespace npeff::pef
