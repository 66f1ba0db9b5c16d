// The gradient-clustering (GC) baseline of paper Section 3.1: k-means with k-means++
// initialisation on L2-normalised vectors under cosine similarity (spherical k-means: centroids
// are the normalised means of their members). This is k-means, as in the paper's GC baseline,
// not the spectral clustering of Michaud et al. (2023).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace npeff::analysis {

struct KMeansOptions {
  std::int64_t clusters = 0;          ///< k (required)
  std::int64_t max_iterations = 100;  ///< Lloyd iterations per restart
  std::int64_t restarts = 1;          ///< k-means++ restarts; the best mean similarity wins
  std::uint64_t seed = 0;             ///< seeds the k-means++ draws (std::mt19937_64)
};

struct KMeansResult {
  at::Tensor centroids;         ///< float32 [k, d], unit rows
  at::Tensor assignment;        ///< int64 [m]
  at::Tensor similarity;        ///< float32 [m]: cosine of each row with its centroid
  double mean_similarity = 0;   ///< the objective (maximised)
  std::int64_t iterations = 0;  ///< of the winning restart
  std::vector<double> history;  ///< mean similarity after each iteration of the winning restart
  std::int64_t reseeded = 0;    ///< empty clusters re-seeded with the worst-fitting row
};

/// Clusters the rows of `x` [m, d] (normalised here; zero rows must be removed by the caller).
/// Deterministic for a given seed and thread count (the similarities are one matrix product).
KMeansResult spherical_kmeans(const at::Tensor& x, const KMeansOptions& options);

/// Adjusted Rand index of two labelings of the same items (Hubert & Arabie 1985).
double adjusted_rand_index(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b);

}  // namespace npeff::analysis
