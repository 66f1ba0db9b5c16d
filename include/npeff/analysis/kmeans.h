// The gradient-clustering (GC) baseline of paper Section 3.1: k-means with k-means++
// initialisation on L2-normalised vectors under cosine similarity (spherical k-means: centroids
// are the normalised means of their members). This is k-means, as in the paper's GC baseline,
// not the spectral clustering of Michaud et al. (2023).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace npeff::io {
class ResumeDir;
}

namespace npeff::analysis {

struct KMeansOptions {
  std::int64_t clusters = 0;          ///< k (required)
  std::int64_t max_iterations = 100;  ///< Lloyd iterations per restart
  std::int64_t restarts = 1;          ///< k-means++ restarts; the best mean similarity wins
  std::uint64_t seed = 0;  ///< restart r draws from std::mt19937_64(std::seed_seq(seed, r))
};

struct KMeansResult {
  at::Tensor centroids;         ///< float32 [k, d], unit rows
  at::Tensor assignment;        ///< int64 [m]
  at::Tensor similarity;        ///< float32 [m]: cosine of each row with its centroid
  double mean_similarity = 0;   ///< the objective (maximised)
  std::int64_t iterations = 0;  ///< of the winning restart
  std::vector<double> history;  ///< mean similarity after each iteration of the winning restart
  std::int64_t reseeded = 0;    ///< empty clusters re-seeded with the worst-fitting row
  std::int64_t resumed_restarts = 0;  ///< restarts taken from pieces of an earlier run
};

/// Progress of spherical_kmeans: reported after every Lloyd iteration (`restart_done` false,
/// `mean_similarity` of that iteration's assignment) and once when a restart ends (`restart_done`
/// true, `iteration` = the iterations it ran, `mean_similarity` its final objective, `converged`
/// false when it stopped at max_iterations).
struct KMeansStep {
  std::int64_t restart = 0;    ///< 0-based
  std::int64_t iteration = 0;  ///< 1-based
  double mean_similarity = 0;
  bool restart_done = false;
  bool converged = false;
};

/// The io::ResumeDir settings of clustering the PEF files `inputs` (their fingerprints) with
/// `options`: everything that determines the result.
nlohmann::json kmeans_resume_settings(const std::vector<std::string>& inputs,
                                      const KMeansOptions& options,
                                      const std::string& device = "cpu");

/// Clusters the rows of `x` [m, d] (normalised here; zero rows must be removed by the caller).
/// Runs on x's device (the products and row maxima there; k-means++ draws and the per-row
/// bookkeeping, O(m) per iteration, on the host); the result's tensors are on the CPU.
/// Deterministic for a given seed, device and thread count (the similarities are one matrix
/// product);
/// each restart's k-means++ draws are a pure function of (seed, restart), so restarts can be
/// run, or skipped, independently. `on_step` (optional) is called as KMeansStep describes (a
/// restart taken from `resume` reports only its end).
/// `resume` (optional, docs/formats.md "Resuming"): each finished restart is kept as the piece
/// restart-R.h5 (schema npeff.kmeans_restart) and taken from there when present, so a rerun
/// after kill -9 gives the same bits. The caller builds the io::ResumeDir from settings that
/// include x's source and `options`, and calls its finish() once its output is written.
KMeansResult spherical_kmeans(const at::Tensor& x, const KMeansOptions& options,
                              const std::function<void(const KMeansStep&)>& on_step = nullptr,
                              io::ResumeDir* resume = nullptr);

/// Adjusted Rand index of two labelings of the same items (Hubert & Arabie 1985).
double adjusted_rand_index(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b);

}  // namespace npeff::analysis
