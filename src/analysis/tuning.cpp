#include "npeff/analysis/tuning.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <utility>

#include "npeff/core/error.h"

namespace npeff::analysis {
namespace {

// Most frequent value >= 0 among `rows` of `values` (ties: the lower value) and its share of
// rows; -1 and 0 when none is >= 0.
std::pair<std::int64_t, double> majority(const std::vector<std::int64_t>& rows,
                                         const std::vector<std::int64_t>& values) {
  std::map<std::int64_t, std::int64_t> counts;
  for (const std::int64_t r : rows) {
    const std::int64_t v = values[static_cast<size_t>(r)];
    if (v >= 0) ++counts[v];
  }
  std::int64_t best = -1, best_count = 0;
  for (const auto& [v, c] : counts)
    if (c > best_count) best = v, best_count = c;
  const double share =
      rows.empty() ? 0.0 : static_cast<double>(best_count) / static_cast<double>(rows.size());
  return {best, share};
}

}  // namespace

std::vector<ComponentTuning> component_tunings(const at::Tensor& w,
                                               const std::vector<std::int64_t>& labels,
                                               const std::vector<std::int64_t>& predictions,
                                               std::int64_t top_k) {
  NPEFF_CHECK(w.dim() == 2, "coefficients must be a matrix [m, C], got ", w.dim(), " dimensions");
  NPEFF_CHECK(top_k >= 1, "--top-examples must be >= 1, got ", top_k);
  const std::int64_t m = w.size(0), C = w.size(1);
  NPEFF_CHECK(static_cast<std::int64_t>(labels.size()) == m &&
                  static_cast<std::int64_t>(predictions.size()) == m,
              "coefficients have ", m, " rows but there are ", labels.size(), " labels and ",
              predictions.size(), " predictions");
  // Column-major copy in float64: one contiguous column per component.
  const at::Tensor wt = w.to(at::kDouble).cpu().t().contiguous();
  const double* data = wt.data_ptr<double>();
  std::vector<ComponentTuning> out(static_cast<size_t>(C));
  std::vector<std::pair<double, std::int64_t>> rows;
  for (std::int64_t j = 0; j < C; ++j) {
    ComponentTuning& t = out[static_cast<size_t>(j)];
    t.component = j;
    rows.clear();
    for (std::int64_t i = 0; i < m; ++i) {
      const double v = data[j * m + i];
      if (v > 0) rows.emplace_back(v, i);
    }
    t.nonzero = static_cast<std::int64_t>(rows.size());
    t.included = t.nonzero >= top_k;
    const auto keep = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(top_k, t.nonzero));
    // Descending value, ties to the lower row (documented in the header).
    std::partial_sort(rows.begin(), rows.begin() + keep, rows.end(),
                      [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    for (std::ptrdiff_t q = 0; q < keep; ++q) {
      t.top_rows.push_back(rows[static_cast<size_t>(q)].second);
      t.top_values.push_back(rows[static_cast<size_t>(q)].first);
    }
    std::tie(t.majority_prediction, t.majority_prediction_fraction) =
        majority(t.top_rows, predictions);
    std::tie(t.majority_label, t.majority_label_fraction) = majority(t.top_rows, labels);
    if (t.included) {
      t.prediction_tuned = t.majority_prediction_fraction == 1.0;
      t.label_tuned = t.majority_label_fraction == 1.0;
      t.lnp = t.label_tuned && !t.prediction_tuned;
    }
  }
  return out;
}

TuningSummary summarize_tunings(const std::vector<ComponentTuning>& tunings, bool has_labels) {
  TuningSummary s;
  s.has_labels = has_labels;
  s.components = static_cast<std::int64_t>(tunings.size());
  for (const ComponentTuning& t : tunings) {
    if (!t.included) continue;
    ++s.included;
    s.prediction_tuned += t.prediction_tuned;
    s.label_tuned += t.label_tuned;
    s.lnp += t.lnp;
  }
  s.excluded = s.components - s.included;
  if (s.included > 0) {
    const auto n = static_cast<double>(s.included);
    s.prediction_fraction = static_cast<double>(s.prediction_tuned) / n;
    s.label_fraction = static_cast<double>(s.label_tuned) / n;
    s.lnp_fraction = static_cast<double>(s.lnp) / n;
  }
  return s;
}

IclClassifier icl_classifier(const at::Tensor& w, const std::vector<ComponentTuning>& tunings,
                             const std::vector<std::int64_t>& labels,
                             const std::vector<std::int64_t>& predictions, std::int64_t num_labels,
                             double label_fraction, bool one_hot) {
  const std::int64_t m = w.size(0), C = w.size(1);
  NPEFF_CHECK(num_labels >= 2, "the classifier needs a task with >= 2 labels, got ", num_labels);
  NPEFF_CHECK(label_fraction > 0 && label_fraction <= 1, "label fraction must lie in (0, 1], got ",
              label_fraction);
  NPEFF_ASSERT(static_cast<std::int64_t>(tunings.size()) == C, "one tuning per component");
  IclClassifier out;
  out.matrix = at::zeros({num_labels, C}, at::kDouble);
  auto M = out.matrix.accessor<double, 2>();
  for (const ComponentTuning& t : tunings) {
    // Strictly the fraction of the top examples with label l; the majority label is the only
    // one that can reach a fraction > 1/2.
    if (!t.included || t.majority_label < 0 || t.majority_label >= num_labels) continue;
    if (t.majority_label_fraction + 1e-12 < label_fraction) continue;
    M[t.majority_label][t.component] = 1.0;
    ++out.tuned_components;
  }
  at::Tensor coef = w.to(at::kDouble).cpu();
  if (one_hot) coef = coef.gt(0).to(at::kDouble);
  const at::Tensor scores = at::mm(coef, out.matrix.t()).contiguous();  // [m, L]
  const auto S = scores.accessor<double, 2>();
  std::int64_t labelled = 0, correct = 0, agree = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    std::int64_t best = 0;
    for (std::int64_t l = 1; l < num_labels; ++l)
      if (S[i][l] > S[i][best]) best = l;
    bool all_zero = true;
    for (std::int64_t l = 0; l < num_labels; ++l) all_zero = all_zero && S[i][l] == 0.0;
    out.undecided += all_zero;
    out.predictions.push_back(best);
    const std::int64_t gold = labels[static_cast<size_t>(i)];
    if (gold >= 0) ++labelled, correct += gold == best;
    agree += predictions[static_cast<size_t>(i)] == best;
  }
  out.accuracy = labelled ? static_cast<double>(correct) / static_cast<double>(labelled) : 0.0;
  out.agreement = m ? static_cast<double>(agree) / static_cast<double>(m) : 0.0;
  return out;
}

}  // namespace npeff::analysis
