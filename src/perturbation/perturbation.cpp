#include "npeff/perturbation/perturbation.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "npeff/core/error.h"
#include "npeff/task/predict.h"
#include "npeff/task/task_batch.h"

namespace npeff::perturbation {

double SparseVector::norm() const {
  return values.to(at::kDouble).norm().item<double>();
}

ParameterPatch::ParameterPatch(const model::CausalLM& model,
                               const model::ParameterSelection& selection, const SparseVector& v,
                               double scale) {
  const at::Tensor idx = v.indices.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor val = v.values.to(at::kCPU, at::kFloat).contiguous();
  NPEFF_CHECK(idx.dim() == 1 && val.sizes() == idx.sizes(),
              "a sparse direction needs indices and values of equal length");
  const int64_t nnz = idx.numel();
  if (nnz == 0) return;
  NPEFF_CHECK(idx.min().item<int64_t>() >= 0 && idx.max().item<int64_t>() < selection.total(),
              "direction indices must lie in [0, ", selection.total(),
              ") (the selected parameters); the direction was recovered for another selection");
  const int64_t* ip = idx.data_ptr<int64_t>();
  int64_t k = 0;
  for (const model::ParameterSlice& s : selection.slices()) {
    int64_t end = k;
    while (end < nnz && ip[end] < s.offset + s.numel) ++end;
    if (end > k) {
      NPEFF_CHECK(ip[k] >= s.offset, "direction indices must be sorted");
      Piece piece;
      piece.flat = model.parameters()[s.index].tensor.view(-1);
      piece.local = idx.narrow(0, k, end - k).sub(s.offset).to(piece.flat.device());
      piece.original = piece.flat.index_select(0, piece.local).clone();
      const at::Tensor delta =
          (val.narrow(0, k, end - k) * scale).to(piece.flat.device(), piece.flat.scalar_type());
      piece.flat.index_put_({piece.local}, piece.original + delta);
      pieces_.push_back(std::move(piece));
    }
    k = end;
  }
  NPEFF_CHECK(k == nnz, "direction indices must be sorted");
}

ParameterPatch::~ParameterPatch() {
  for (Piece& p : pieces_) p.flat.index_put_({p.local}, p.original);
}

at::Tensor task_log_probs(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                          const task::Task& task, const std::vector<task::Example>& examples,
                          int64_t batch_size) {
  NPEFF_CHECK(batch_size > 0, "--batch-size must be positive");
  torch::autograd::AutoGradMode no_grad(false);
  const auto labels = task.kind == task::TaskKind::kVocab ? std::vector<std::vector<int32_t>>{}
                                                          : task::label_token_ids(task, tokenizer);
  std::vector<at::Tensor> parts;
  const int64_t m = static_cast<int64_t>(examples.size());
  for (int64_t start = 0; start < m; start += batch_size) {
    const int64_t n = std::min(batch_size, m - start);
    const std::vector<task::Example> part(examples.begin() + start, examples.begin() + start + n);
    const task::TaskBatch tb = task::make_task_batch(task, tokenizer, labels, part,
                                                     model.config().max_position_embeddings);
    const model::ModelOutputs outputs(
        model,
        model.forward_hidden(tb.batch.input_ids, tb.batch.attention_mask, nullptr,
                             tb.batch.layout_or_null()),
        nullptr);
    parts.push_back(task::class_log_probs(task, labels, tb, outputs).cpu());
  }
  return at::cat(parts, 0);
}

at::Tensor kl_divergence(const at::Tensor& log_p, const at::Tensor& log_q) {
  NPEFF_CHECK(log_p.sizes() == log_q.sizes(), "kl_divergence: shapes differ");
  const at::Tensor lp = log_p.to(at::kDouble), lq = log_q.to(at::kDouble);
  // 0 * log 0 = 0: categories with p = 0 contribute nothing.
  const at::Tensor p = lp.exp();
  return at::where(p > 0, p * (lp - lq), at::zeros_like(p)).sum(1);
}

double mean_ratio(double top, double baseline) {
  if (top == 0 && baseline == 0) return 1;
  return baseline > 0 ? top / baseline : std::numeric_limits<double>::infinity();
}

std::vector<int64_t> top_rows(const at::Tensor& coefficients, int64_t k) {
  const at::Tensor c = coefficients.to(at::kCPU, at::kDouble).contiguous();
  const int64_t m = c.numel();
  std::vector<int64_t> rows(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) rows[static_cast<size_t>(i)] = i;
  const double* v = c.data_ptr<double>();
  k = std::min(k, m);
  std::partial_sort(rows.begin(), rows.begin() + k, rows.end(),
                    [&](int64_t a, int64_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  rows.resize(static_cast<size_t>(k));
  return rows;
}

double geometric_mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  double log_sum = 0;
  for (double x : values) log_sum += std::log(x);
  return std::exp(log_sum / static_cast<double>(values.size()));
}

Selectivity measure_selectivity(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                                const task::Task& task, const model::ParameterSelection& selection,
                                const SparseVector& v, double magnitude,
                                const std::vector<task::Example>& top, const at::Tensor& base_top,
                                const std::vector<task::Example>& baseline,
                                const at::Tensor& base_baseline, int64_t batch_size) {
  NPEFF_CHECK(magnitude >= 0, "--magnitude must not be negative, got ", magnitude);
  const double norm = v.norm();
  NPEFF_CHECK(norm > 0 || magnitude == 0, "the direction is zero: nothing to perturb");
  Selectivity s;
  for (int sign = 0; sign < 2; ++sign) {
    const double scale = magnitude == 0 ? 0.0 : (sign == 0 ? 1.0 : -1.0) * magnitude / norm;
    const ParameterPatch patch(model, selection, v, scale);
    s.kl_top_examples[sign] =
        kl_divergence(base_top, task_log_probs(model, tokenizer, task, top, batch_size));
    const at::Tensor kl_base =
        kl_divergence(base_baseline, task_log_probs(model, tokenizer, task, baseline, batch_size));
    s.kl_top[sign] = s.kl_top_examples[sign].mean().item<double>();
    s.kl_baseline[sign] = kl_base.mean().item<double>();
    s.ratio[sign] = mean_ratio(s.kl_top[sign], s.kl_baseline[sign]);
  }
  return s;
}

}  // namespace npeff::perturbation
