#include "npeff/analysis/factors.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "npeff/analysis/tuning.h"
#include "npeff/core/error.h"

namespace npeff::analysis {

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  NPEFF_ASSERT(scores.size() == positive.size(), "one label per score");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mid-ranks over groups of equal scores; U = sum of positive ranks - P (P + 1) / 2.
  double rank_sum = 0, pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mid = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0 + 1.0;
    for (size_t q = i; q < j; ++q)
      if (positive[order[q]]) rank_sum += mid, ++pos;
    i = j;
  }
  const double neg = static_cast<double>(scores.size()) - pos;
  if (pos == 0 || neg == 0) return 0.5;
  return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

std::vector<FactorScore> score_factors(const at::Tensor& w, const at::Tensor& presence,
                                       std::int64_t top_k) {
  NPEFF_CHECK(w.dim() == 2 && presence.dim() == 2 && w.size(0) == presence.size(0),
              "coefficients [m, C] and factor presence [m, F] must share rows, got ", w.sizes(),
              " and ", presence.sizes());
  const std::int64_t m = w.size(0), C = w.size(1), F = presence.size(1);
  const at::Tensor has = presence.to(at::kBool).cpu().contiguous();
  const auto H = has.accessor<bool, 2>();
  const std::vector<std::int64_t> none(static_cast<size_t>(m), -1);
  const std::vector<ComponentTuning> tunings = component_tunings(w, none, none, top_k);
  const at::Tensor wt = w.to(at::kDouble).cpu().t().contiguous();
  std::vector<FactorScore> out(static_cast<size_t>(F));
  for (std::int64_t f = 0; f < F; ++f) {
    FactorScore& s = out[static_cast<size_t>(f)];
    std::vector<bool> positive(static_cast<size_t>(m));
    for (std::int64_t i = 0; i < m; ++i) {
      positive[static_cast<size_t>(i)] = H[i][f];
      s.present += H[i][f];
    }
    for (std::int64_t c = 0; c < C; ++c) {
      const ComponentTuning& t = tunings[static_cast<size_t>(c)];
      if (t.included) {
        std::int64_t hits = 0;
        for (const std::int64_t row : t.top_rows) hits += H[row][f];
        const double precision = static_cast<double>(hits) / static_cast<double>(top_k);
        if (precision > s.top_precision || s.precision_component < 0)
          s.top_precision = precision, s.precision_component = c;
      }
      const double* col = wt.data_ptr<double>() + c * m;
      const double auc = roc_auc(std::vector<double>(col, col + m), positive);
      if (auc > s.auc || s.auc_component < 0) s.auc = auc, s.auc_component = c;
    }
  }
  return out;
}

}  // namespace npeff::analysis
