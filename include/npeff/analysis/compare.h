// Comparisons between decompositions and of PEF spectra (paper Section 4, Figures 2 and 3,
// Appendix H Tables 12-13).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "npeff/analysis/tuning.h"

namespace npeff::analysis {

/// Cosine similarities of the coefficient columns of w1 [m, C1] and w2 [m, C2] (same rows):
/// float64 [C1, C2]. A zero column has similarity 0 with everything.
at::Tensor coefficient_cosines(const at::Tensor& w1, const at::Tensor& w2);

/// Rows of w1 and w2 for the example ids both have, in the order of ids1 (decompositions drop
/// zero PEFs, so two decompositions of one data set can differ in rows). Throws when none.
std::pair<at::Tensor, at::Tensor> align_rows(const at::Tensor& w1, const at::Tensor& ids1,
                                             const at::Tensor& w2, const at::Tensor& ids2);

/// Section 4: for every component of either decomposition, the largest cosine similarity with a
/// component of the other; the mean over all C1 + C2 components. Symmetric; 1 for a
/// decomposition with itself (when it has no zero column).
double decomposition_similarity(const at::Tensor& w1, const at::Tensor& w2);

/// Appendix H: each fine component is matched to the coarse component with the most similar
/// coefficients (ties: lower id). Over the matches of prediction-tuned coarse components, the
/// fraction whose fine component is prediction-tuned to the same prediction. Fine components
/// with fewer than top_k examples (excluded from tunings) are left out of that fraction.
struct ComponentSplits {
  std::vector<std::int64_t> coarse_of_fine;  ///< per fine component
  std::vector<double> similarity;            ///< its cosine with that coarse component
  std::int64_t coarse_matched = 0;           ///< coarse components with >= 1 fine match
  std::int64_t considered = 0;  ///< included fine matches of prediction-tuned coarse components
  std::int64_t preserved = 0;   ///< ... that keep the coarse prediction tuning
  double preserved_fraction = 0;
};
ComponentSplits component_splits(const at::Tensor& w_coarse, const at::Tensor& w_fine,
                                 const std::vector<ComponentTuning>& coarse,
                                 const std::vector<ComponentTuning>& fine);

/// Figure 3: eigenvalues of each PEF G_i^T G_i (the r eigenvalues of G_i G_i^T), sorted
/// descending and divided by the largest, averaged over examples. Zero PEFs are skipped.
struct EigenDecay {
  std::vector<double> mean;  ///< [r]; mean[0] == 1
  std::vector<double> min, max;
  std::int64_t examples = 0;
  std::int64_t skipped = 0;
};
/// Accumulates over batches of PEFs [b, r, d] (float32/float64).
class EigenDecayAccumulator {
 public:
  void add(const at::Tensor& pefs);
  EigenDecay result() const;

 private:
  std::vector<double> sum_, min_, max_;
  std::int64_t examples_ = 0, skipped_ = 0;
};

}  // namespace npeff::analysis
