#include "npeff/analysis/compare.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "npeff/core/error.h"

namespace npeff::analysis {

at::Tensor coefficient_cosines(const at::Tensor& w1, const at::Tensor& w2) {
  NPEFF_CHECK(w1.dim() == 2 && w2.dim() == 2 && w1.size(0) == w2.size(0),
              "coefficient matrices must share their rows: got ", w1.sizes(), " and ", w2.sizes());
  const at::Tensor a = w1.to(at::kDouble).cpu(), b = w2.to(at::kDouble).cpu();
  const at::Tensor na = a.norm(2, {0}), nb = b.norm(2, {0});
  // Zero columns get norm 1, so their (zero) dot products stay 0.
  const at::Tensor sa = at::where(na.gt(0), na, at::ones_like(na));
  const at::Tensor sb = at::where(nb.gt(0), nb, at::ones_like(nb));
  return at::mm((a / sa).t(), b / sb);
}

std::pair<at::Tensor, at::Tensor> align_rows(const at::Tensor& w1, const at::Tensor& ids1,
                                             const at::Tensor& w2, const at::Tensor& ids2) {
  std::unordered_map<std::int64_t, std::int64_t> row2;
  const at::Tensor a = ids1.to(at::kLong).contiguous(), b = ids2.to(at::kLong).contiguous();
  for (std::int64_t i = 0; i < b.numel(); ++i) row2.emplace(b.data_ptr<std::int64_t>()[i], i);
  std::vector<std::int64_t> r1, r2;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const auto it = row2.find(a.data_ptr<std::int64_t>()[i]);
    if (it != row2.end()) r1.push_back(i), r2.push_back(it->second);
  }
  NPEFF_CHECK(!r1.empty(), "the two decompositions have no example id in common");
  return {w1.index_select(0, at::tensor(r1, at::kLong)),
          w2.index_select(0, at::tensor(r2, at::kLong))};
}

double decomposition_similarity(const at::Tensor& w1, const at::Tensor& w2) {
  const at::Tensor s = coefficient_cosines(w1, w2);
  NPEFF_CHECK(s.numel() > 0, "both decompositions need at least one component");
  const double total =
      std::get<0>(s.max(1)).sum().item<double>() + std::get<0>(s.max(0)).sum().item<double>();
  return total / static_cast<double>(s.size(0) + s.size(1));
}

ComponentSplits component_splits(const at::Tensor& w_coarse, const at::Tensor& w_fine,
                                 const std::vector<ComponentTuning>& coarse,
                                 const std::vector<ComponentTuning>& fine) {
  const at::Tensor s = coefficient_cosines(w_coarse, w_fine).contiguous();  // [Cc, Cf]
  const std::int64_t Cc = s.size(0), Cf = s.size(1);
  NPEFF_ASSERT(static_cast<std::int64_t>(coarse.size()) == Cc &&
                   static_cast<std::int64_t>(fine.size()) == Cf,
               "one tuning per component");
  const auto S = s.accessor<double, 2>();
  ComponentSplits out;
  std::vector<char> matched(static_cast<size_t>(Cc), 0);
  for (std::int64_t f = 0; f < Cf; ++f) {
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < Cc; ++c)
      if (S[c][f] > S[best][f]) best = c;  // ties: the lower coarse id
    out.coarse_of_fine.push_back(best);
    out.similarity.push_back(S[best][f]);
    matched[static_cast<size_t>(best)] = 1;
    const ComponentTuning& tc = coarse[static_cast<size_t>(best)];
    const ComponentTuning& tf = fine[static_cast<size_t>(f)];
    if (!tc.prediction_tuned || !tf.included) continue;
    ++out.considered;
    out.preserved += tf.prediction_tuned && tf.majority_prediction == tc.majority_prediction;
  }
  out.coarse_matched = std::count(matched.begin(), matched.end(), 1);
  out.preserved_fraction =
      out.considered ? static_cast<double>(out.preserved) / static_cast<double>(out.considered)
                     : 0.0;
  return out;
}

void EigenDecayAccumulator::add(const at::Tensor& pefs) {
  NPEFF_CHECK(pefs.dim() == 3, "PEFs must be [m, r, d], got ", pefs.sizes());
  const at::Tensor g = pefs.to(at::kDouble).cpu();
  const std::int64_t r = g.size(1);
  if (sum_.empty()) {
    sum_.assign(static_cast<size_t>(r), 0.0);
    min_.assign(static_cast<size_t>(r), std::numeric_limits<double>::infinity());
    max_.assign(static_cast<size_t>(r), -std::numeric_limits<double>::infinity());
  }
  NPEFF_CHECK(static_cast<std::int64_t>(sum_.size()) == r, "PEF rank changed from ", sum_.size(),
              " to ", r, " between batches");
  // The non-zero eigenvalues of G^T G [d, d] are those of the small Gram G G^T [r, r].
  const at::Tensor gram = at::bmm(g, g.transpose(1, 2));
  const at::Tensor ev = std::get<0>(at::linalg_eigvalsh(gram).clamp_min(0).sort(1, true));
  const auto E = ev.accessor<double, 2>();
  for (std::int64_t i = 0; i < ev.size(0); ++i) {
    const double top = E[i][0];
    if (!(top > 0)) {
      ++skipped_;
      continue;
    }
    ++examples_;
    for (std::int64_t q = 0; q < r; ++q) {
      const double v = E[i][q] / top;
      sum_[static_cast<size_t>(q)] += v;
      min_[static_cast<size_t>(q)] = std::min(min_[static_cast<size_t>(q)], v);
      max_[static_cast<size_t>(q)] = std::max(max_[static_cast<size_t>(q)], v);
    }
  }
}

EigenDecay EigenDecayAccumulator::result() const {
  EigenDecay d;
  d.examples = examples_;
  d.skipped = skipped_;
  if (examples_ == 0) return d;
  for (size_t q = 0; q < sum_.size(); ++q) {
    d.mean.push_back(sum_[q] / static_cast<double>(examples_));
    d.min.push_back(min_[q]);
    d.max.push_back(max_[q]);
  }
  return d;
}

}  // namespace npeff::analysis
