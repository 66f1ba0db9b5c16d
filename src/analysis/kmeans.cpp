#include "npeff/analysis/kmeans.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <utility>

#include "npeff/core/error.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"

namespace npeff::analysis {
namespace {

struct Run {
  at::Tensor centroids, assignment, similarity;
  double mean_similarity = -2;
  std::int64_t iterations = 0, reseeded = 0;
  bool converged = false;
  std::vector<double> history;
};

// k-means++ (Arthur & Vassilvitskii 2007): each next centre is drawn with probability
// proportional to the squared distance to the nearest chosen centre, which for unit vectors is
// 2 (1 - cos).
at::Tensor kmeans_plus_plus(const at::Tensor& x, std::int64_t k, std::mt19937_64& rng) {
  const std::int64_t m = x.size(0);
  std::vector<std::int64_t> chosen;
  chosen.push_back(std::uniform_int_distribution<std::int64_t>(0, m - 1)(rng));
  // The m similarities come to the host (the draw is sequential); x stays where it is.
  at::Tensor best = at::mv(x, x[chosen[0]]).to(at::kCPU, at::kDouble).contiguous();
  while (static_cast<std::int64_t>(chosen.size()) < k) {
    const auto b = best.accessor<double, 1>();
    std::vector<double> weight(static_cast<size_t>(m));
    double total = 0;
    for (std::int64_t i = 0; i < m; ++i)
      total += weight[static_cast<size_t>(i)] = std::max(0.0, 1.0 - b[i]);
    std::int64_t next = 0;
    if (total > 0) {
      double u = std::uniform_real_distribution<double>(0.0, total)(rng);
      next = m - 1;
      for (std::int64_t i = 0; i < m; ++i) {
        u -= weight[static_cast<size_t>(i)];
        if (u < 0 && weight[static_cast<size_t>(i)] > 0) {
          next = i;
          break;
        }
      }
    } else {
      next = std::uniform_int_distribution<std::int64_t>(0, m - 1)(rng);  // all rows covered
    }
    chosen.push_back(next);
    best = at::maximum(best, at::mv(x, x[next]).to(at::kCPU, at::kDouble)).contiguous();
  }
  return x.index_select(0, at::tensor(chosen, at::kLong).to(x.device())).clone();
}

at::Tensor normalized(const at::Tensor& c) {
  const at::Tensor n = c.norm(2, {1}, true);
  return c / at::where(n.gt(0), n, at::ones_like(n));
}

Run lloyd(const at::Tensor& x, at::Tensor centroids, std::int64_t max_iterations,
          std::int64_t restart, const std::function<void(const KMeansStep&)>& on_step) {
  const std::int64_t m = x.size(0), k = centroids.size(0);
  Run run;
  std::vector<std::int64_t> assign(static_cast<size_t>(m), -1);
  std::vector<float> sim(static_cast<size_t>(m));
  for (std::int64_t it = 0; it < max_iterations; ++it) {
    // On x's device: the [m, k] similarities and their row maxima (argmax returns the first
    // maximum: ties go to the lower cluster on every device); only the m winners and their
    // similarities come to the host for the bookkeeping below.
    const at::Tensor s = at::mm(x, centroids.t());  // [m, k]
    const at::Tensor winner = s.argmax(1);
    const at::Tensor best_sim = s.gather(1, winner.unsqueeze(1)).squeeze(1).cpu().contiguous();
    const at::Tensor best_c = winner.cpu().contiguous();
    const float* bs = best_sim.data_ptr<float>();
    const std::int64_t* bc = best_c.data_ptr<std::int64_t>();
    bool changed = false;
    double total = 0;
    for (std::int64_t i = 0; i < m; ++i) {
      const std::int64_t best = bc[i];
      changed = changed || assign[static_cast<size_t>(i)] != best;
      assign[static_cast<size_t>(i)] = best;
      sim[static_cast<size_t>(i)] = bs[i];
      total += bs[i];
    }
    run.history.push_back(total / static_cast<double>(m));
    run.iterations = it + 1;
    // Empty clusters take the rows that fit their own cluster worst.
    std::vector<std::int64_t> size(static_cast<size_t>(k), 0);
    for (const std::int64_t a : assign) ++size[static_cast<size_t>(a)];
    std::vector<std::pair<float, std::int64_t>> worst;
    for (std::int64_t i = 0; i < m; ++i) worst.emplace_back(sim[static_cast<size_t>(i)], i);
    std::sort(worst.begin(), worst.end());
    size_t next_worst = 0;
    for (std::int64_t c = 0; c < k; ++c) {
      while (size[static_cast<size_t>(c)] == 0 && next_worst < worst.size()) {
        const std::int64_t i = worst[next_worst++].second;
        std::int64_t& from = assign[static_cast<size_t>(i)];
        if (size[static_cast<size_t>(from)] <= 1) continue;
        --size[static_cast<size_t>(from)];
        from = c;
        ++size[static_cast<size_t>(c)];
        ++run.reseeded;
        changed = true;
      }
    }
    const at::Tensor a = at::tensor(assign, at::kLong).to(x.device());
    const at::Tensor onehot = at::zeros({m, k}, x.options()).scatter_(1, a.view({m, 1}), 1.0);
    centroids = normalized(at::mm(onehot.t(), x));
    if (on_step) on_step({restart, it + 1, run.history.back(), false, false});
    if (!changed) {
      run.converged = true;
      break;
    }
  }
  // Final similarities with the final centroids (assignments are stable or capped).
  const at::Tensor a = at::tensor(assign, at::kLong);
  run.similarity = (x * centroids.index_select(0, a.to(x.device()))).sum(1).cpu();
  run.mean_similarity = run.similarity.to(at::kDouble).mean().item<double>();
  run.assignment = a;
  run.centroids = centroids.cpu();
  return run;
}

// Restart r's generator: a pure function of (seed, r), whatever ran before it.
std::mt19937_64 restart_rng(std::uint64_t seed, std::int64_t restart) {
  const auto r = static_cast<std::uint64_t>(restart);
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(r >> 32)};
  return std::mt19937_64(seq);
}

constexpr const char* kRestartSchema = "npeff.kmeans_restart";

std::string restart_piece(std::int64_t restart) {
  return "restart-" + std::to_string(restart) + ".h5";
}

void write_restart(io::File& f, const Run& run) {
  io::write_header(f, {kRestartSchema, 1}, nlohmann::json::object());
  f.root().set_attr("mean_similarity", run.mean_similarity);
  f.root().set_attr("iterations", run.iterations);
  f.root().set_attr("reseeded", run.reseeded);
  f.root().set_attr("converged", std::int64_t{run.converged ? 1 : 0});
  f.root().set_attr("history", run.history);
  const at::Tensor c = run.centroids.contiguous(), a = run.assignment.contiguous(),
                   s = run.similarity.contiguous();
  f.root()
      .create_dataset("centroids", io::DType::kFloat32, {c.size(0), c.size(1)})
      .write(c.data_ptr<float>());
  f.root()
      .create_dataset("assignment", io::DType::kInt64, {a.size(0)})
      .write(a.data_ptr<std::int64_t>());
  f.root()
      .create_dataset("similarity", io::DType::kFloat32, {s.size(0)})
      .write(s.data_ptr<float>());
}

Run read_restart(const io::File& f, std::int64_t m, std::int64_t k, std::int64_t d) {
  io::expect_schema(f, kRestartSchema, 1);
  Run run;
  run.mean_similarity = f.root().attr_double("mean_similarity");
  run.iterations = f.root().attr_int("iterations");
  run.reseeded = f.root().attr_int("reseeded");
  run.converged = f.root().attr_int("converged") != 0;
  run.history = f.root().attr_double_vector("history");
  f.root().dataset("centroids").expect(io::DType::kFloat32, {k, d});
  f.root().dataset("assignment").expect(io::DType::kInt64, {m});
  f.root().dataset("similarity").expect(io::DType::kFloat32, {m});
  run.centroids = at::empty({k, d}, at::kFloat);
  run.assignment = at::empty({m}, at::kLong);
  run.similarity = at::empty({m}, at::kFloat);
  f.root().dataset("centroids").read(run.centroids.data_ptr<float>());
  f.root().dataset("assignment").read(run.assignment.data_ptr<std::int64_t>());
  f.root().dataset("similarity").read(run.similarity.data_ptr<float>());
  return run;
}

}  // namespace

nlohmann::json kmeans_resume_settings(const std::vector<std::string>& inputs,
                                      const KMeansOptions& o, const std::string& device) {
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& path : inputs) files.push_back(io::file_fingerprint(path));
  return {{"pefs", files},
          {"clusters", o.clusters},
          {"max_iterations", o.max_iterations},
          {"restarts", o.restarts},
          {"seed", o.seed},
          {"device", device}};  // float32 summation order of the similarities
}

KMeansResult spherical_kmeans(const at::Tensor& x_in, const KMeansOptions& o,
                              const std::function<void(const KMeansStep&)>& on_step,
                              io::ResumeDir* resume) {
  NPEFF_CHECK(x_in.dim() == 2, "k-means needs a matrix [m, d], got ", x_in.sizes());
  const std::int64_t m = x_in.size(0);
  NPEFF_CHECK(o.clusters >= 1 && o.clusters <= m, "--clusters must lie in [1, ", m,
              "] (the number of non-zero rows), got ", o.clusters);
  NPEFF_CHECK(o.max_iterations >= 1 && o.restarts >= 1,
              "--max-iterations and --restarts must be >= 1");
  const at::Tensor x = normalized(x_in.to(at::kFloat).contiguous());  // on x_in's device
  NPEFF_CHECK(x.norm(2, {1}).gt(0).all().item<bool>(), "k-means input has zero rows");
  Run best;
  std::int64_t resumed = 0;
  for (std::int64_t r = 0; r < o.restarts; ++r) {
    const std::string piece = restart_piece(r);
    Run run;
    if (resume != nullptr && resume->has(piece)) {
      run = read_restart(resume->open(piece), m, o.clusters, x.size(1));
      ++resumed;
    } else {
      std::mt19937_64 rng = restart_rng(o.seed, r);
      run = lloyd(x, kmeans_plus_plus(x, o.clusters, rng), o.max_iterations, r, on_step);
      if (resume != nullptr) {
        io::File f = resume->create(piece);
        write_restart(f, run);
        f.commit();  // the restart exists whole or not at all
      }
    }
    if (on_step) on_step({r, run.iterations, run.mean_similarity, true, run.converged});
    if (run.mean_similarity > best.mean_similarity) best = std::move(run);
  }
  KMeansResult out;
  out.centroids = best.centroids;
  out.assignment = best.assignment;
  out.similarity = best.similarity;
  out.mean_similarity = best.mean_similarity;
  out.iterations = best.iterations;
  out.history = best.history;
  out.reseeded = best.reseeded;
  out.resumed_restarts = resumed;
  return out;
}

double adjusted_rand_index(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
  NPEFF_CHECK(a.size() == b.size(), "labelings differ in length: ", a.size(), " vs ", b.size());
  const auto pairs = [](double n) { return n * (n - 1) / 2; };
  std::map<std::pair<std::int64_t, std::int64_t>, double> joint;
  std::map<std::int64_t, double> ca, cb;
  for (size_t i = 0; i < a.size(); ++i) ++joint[{a[i], b[i]}], ++ca[a[i]], ++cb[b[i]];
  double sum_joint = 0, sum_a = 0, sum_b = 0;
  for (const auto& [key, n] : joint) sum_joint += pairs(n);
  for (const auto& [key, n] : ca) sum_a += pairs(n);
  for (const auto& [key, n] : cb) sum_b += pairs(n);
  const double total = pairs(static_cast<double>(a.size()));
  const double expected = total > 0 ? sum_a * sum_b / total : 0;
  const double top = 0.5 * (sum_a + sum_b);
  if (top == expected) return 1.0;  // both labelings trivial (one cluster or all singletons)
  return (sum_joint - expected) / (top - expected);
}

}  // namespace npeff::analysis
