// npeff cluster: the gradient-clustering (GC) baseline of paper Section 3.1 — k-means
// (k-means++ initialisation, cosine similarity on L2-normalised vectors) of projected G-NPEFF
// gradients. Written as an npeff.decomposition with method "kmeans" so that tune-report,
// compare, recover and perturb take it like any decomposition.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "cli/subcommands.h"
#include "npeff/analysis/kmeans.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"

namespace npeff::cli {
namespace {

struct ClusterOptions {
  std::vector<std::string> pefs;   ///< G-NPEFF PEF files (compute-pefs --pef gradient), r = 1
  analysis::KMeansOptions kmeans;  ///< clusters (required), max_iterations 100, restarts 1, seed 0
  std::string out;                 ///< npeff.decomposition (method kmeans)
  bool json = false;
};

int run_cluster(const ClusterOptions& o, const GlobalOptions& g) {
  const c10::Device dev = select_device(g.device);
  PathCheck inputs;
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  const std::vector<io::PefFileInfo> files = io::read_compatible_pef_infos(o.pefs);
  NPEFF_CHECK(files.front().rank == 1, files.front().path, " holds rank-", files.front().rank,
              " PEFs; gradient clustering takes one gradient per example "
              "(compute-pefs --pef gradient)");
  // Finished restarts are pieces of OUT.partial.d/; other settings are refused before loading.
  io::ResumeDir resume(o.out, analysis::kmeans_resume_settings(o.pefs, o.kmeans, dev.str()));
  // Rank-1 PEFs [m, 1, d] are the rows of x [m, d]: read straight into it (file by file, HDF5
  // converting float16 on read; 4 m d bytes, a second copy only when zero rows are left out,
  // freed once on a GPU).
  int64_t total = 0;
  for (const io::PefFileInfo& info : files) total += info.examples;
  at::Tensor x = at::empty({total, files.front().dim}, at::kFloat);
  at::Tensor all_ids = at::empty({total}, at::kLong);
  io::read_pef_rows(io::open_pef_files(files), 0, total, 1, files.front().dim, x.data_ptr<float>(),
                    all_ids.data_ptr<int64_t>(), nullptr);
  // NaN rows would pass for zero ones below (norm > 0 is false for NaN): refuse them by name.
  const at::Tensor bad = (~at::isfinite(x)).any(1).nonzero();
  NPEFF_CHECK(bad.numel() == 0, "example ", all_ids[bad[0][0].item<int64_t>()].item<int64_t>(),
              " has a non-finite gradient (", bad.numel(),
              " in all): cluster needs finite PEFs (decompose --drop-nonfinite leaves them out)");
  // Zero gradients (p = 1) have no direction; like decompose, leave them out.
  const at::Tensor keep = x.norm(2, {1}).gt(0).nonzero().squeeze(1);
  const int64_t dropped = x.size(0) - keep.numel();
  if (dropped > 0) x = x.index_select(0, keep);
  x = x.to(dev);  // the host copy goes once on the device
  const at::Tensor ids = all_ids.index_select(0, keep);
  if (dropped > 0) log::warn("cluster: left out ", dropped, " examples with a zero gradient");
  NPEFF_CHECK(o.kmeans.clusters >= 1 && o.kmeans.clusters <= x.size(0),
              "--clusters must lie in [1, ", x.size(0),
              "] (examples with a non-zero gradient), got ", o.kmeans.clusters);
  // Progress over the iteration budget (restarts x max iterations, one matrix product each): a
  // restart that converges early counts its unused iterations as done, so the ETA is an upper
  // bound; each restart's end is logged with the ETA of the restarts left.
  const int64_t restarts = o.kmeans.restarts, cap = o.kmeans.max_iterations;
  Progress progress("cluster", restarts * cap, "iterations", 5.0);
  // A restart kept from an earlier run reports only its end; the ETA counts the time of the
  // restarts computed in this run.
  int64_t lloyd_iterations = 0, seen = 0, computed = 0;
  double best = -2, computed_seconds = 0, last_end = 0;
  const analysis::KMeansResult r = analysis::spherical_kmeans(
      x, o.kmeans,
      [&](const analysis::KMeansStep& s) {
        if (!s.restart_done) {
          ++lloyd_iterations;
          ++seen;
          progress.advance(1);
          return;
        }
        const bool kept = seen == 0;
        progress.advance(cap - seen);
        seen = 0;
        best = std::max(best, s.mean_similarity);
        const double elapsed = progress.elapsed_seconds();
        if (!kept) ++computed, computed_seconds += elapsed - last_end;
        last_end = elapsed;
        const int64_t left = restarts - s.restart - 1;
        log::info("cluster: restart ", s.restart + 1, "/", restarts,
                  kept ? " (kept from an earlier run)" : "", " ",
                  s.converged ? "converged" : "stopped at --max-iterations", " after ", s.iteration,
                  " iterations, mean similarity ", s.mean_similarity, " (best ", best, "), ",
                  format_duration(elapsed), " elapsed, ETA ",
                  computed > 0 ? format_duration(computed_seconds / static_cast<double>(computed) *
                                                 static_cast<double>(left))
                               : std::string("?"));
      },
      &resume);
  log::info("cluster: done, ", restarts, " restarts, ", lloyd_iterations, " iterations in ",
            format_duration(progress.elapsed_seconds()));

  // W: a member's proximity to its centroid, (1 + cos) / 2 in (0, 1], so members rank by
  // proximity (paper Section 3.1) and non-members are 0.
  const int64_t m = x.size(0), C = o.kmeans.clusters;
  decomposition::DecompositionData d;
  d.method = "kmeans";
  d.w = at::zeros({m, C}, at::kFloat);
  d.w.scatter_(1, r.assignment.view({m, 1}),
               ((r.similarity + 1) * 0.5).clamp_min(1e-12).view({m, 1}));
  d.h = r.centroids;
  d.example_ids = ids;
  for (size_t i = 0; i < r.history.size(); ++i) {
    d.loss.steps.push_back(static_cast<int64_t>(i));
    d.loss.values.push_back(1.0 - r.history[i]);  // mean cosine distance: falls as it converges
    d.loss.seconds.push_back(0.0);
  }
  d.has_projection = files.front().has_projection;
  if (d.has_projection) d.projection = files.front().projection;
  const at::Tensor sizes = at::bincount(r.assignment, {}, C);
  io::File f = io::File::create(o.out);
  io::write_header(f, {"npeff.decomposition", 1},
                   {{"command", "cluster"},
                    {"pefs", o.pefs},
                    {"clusters", C},
                    {"max_iterations", o.kmeans.max_iterations},
                    {"restarts", o.kmeans.restarts},
                    {"seed", o.kmeans.seed},
                    {"examples", m},
                    {"dropped_zero", dropped}});
  decomposition::write_factors(f, d);
  f.root().set_attr("components", C);
  f.root().set_attr("seed", o.kmeans.seed);
  f.root().set_attr("mean_similarity", r.mean_similarity);
  f.root().set_attr("iterations", r.iterations);
  f.root().set_attr("final_loss", 1.0 - r.mean_similarity);
  f.commit();
  resume.finish();
  return report_success(o.out,
                        {{"command", "cluster"},
                         {"output", o.out},
                         {"examples", m},
                         {"dropped_zero", dropped},
                         {"clusters", C},
                         {"mean_similarity", r.mean_similarity},
                         {"iterations", r.iterations},
                         {"reseeded_empty", r.reseeded},
                         {"resumed_restarts", r.resumed_restarts},
                         {"smallest_cluster", sizes.min().item<int64_t>()},
                         {"largest_cluster", sizes.max().item<int64_t>()},
                         {"seconds", progress.elapsed_seconds()}},
                        o.json);
}

}  // namespace

void add_cluster_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<ClusterOptions>();
  CLI::App* sub = app.add_subcommand(
      "cluster",
      "Gradient-clustering baseline (paper Section 3.1): k-means with k-means++ initialisation\n"
      "under cosine similarity of the L2-normalised projected gradients of G-NPEFF PEF files\n"
      "(compute-pefs --pef gradient). This is k-means, as in the paper's GC baseline, not the\n"
      "spectral clustering of Michaud et al. Writes an npeff.decomposition (method kmeans):\n"
      "W = (1 + cos)/2 of each member with its centroid (0 elsewhere), H = unit centroids, so\n"
      "tune-report ranks members by proximity and recover/perturb take the centroids.\n"
      "Resumable per restart: finished ones are kept in OUT.partial.d/ and reused by a rerun of\n"
      "the same command (other settings are refused).\n"
      "Examples:\n"
      "  npeff cluster -p sst2.grad.h5 --clusters 128 -o sst2.gc.h5\n"
      "  npeff cluster -p g.0.h5 -p g.1.h5 --clusters 512 --restarts 4 --seed 1 -o gc.h5 --json");
  sub->add_option("--pefs,-p", o->pefs, "G-NPEFF PEF files (rank 1)")->required();
  sub->add_option("--clusters", o->kmeans.clusters, "Number of clusters")->required();
  sub->add_option("--max-iterations", o->kmeans.max_iterations, "Lloyd iterations per restart")
      ->capture_default_str();
  sub->add_option("--restarts", o->kmeans.restarts, "k-means++ restarts (best kept)")
      ->capture_default_str();
  sub->add_option("--seed", o->kmeans.seed, "Seed of the k-means++ draws")->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_cluster(*o, global); }; });
}

}  // namespace npeff::cli
