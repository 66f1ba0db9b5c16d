// npeff recover: parameter-space directions of components (paper Sections 2.2.1, 3.2, App. G):
// orthogonal rejection in projected space, then compressed sensing by FPC through the same
// sparse projection the PEFs were made with. Writes npeff.recovered.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <sstream>

#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"
#include "npeff/pef/pef_file.h"
#include "npeff/projection/projection.h"
#include "npeff/recovery/recovery.h"

namespace npeff::cli {
namespace {

struct RecoverOptions {
  std::string decomposition;  ///< npeff.decomposition (required)
  std::string pefs;           ///< the npeff.pefs file it was made from (required)
  std::string components;     ///< comma-separated ids; empty: --random or all
  int64_t random = 0;         ///< pick this many components at random (--seed)
  uint64_t seed = 0;
  double reject_threshold = 0.5;  ///< Section 3.2; 0 disables the rejection
  recovery::FpcOptions fpc;       ///< mu 4e-5, beta 4, gamma 0.99 (App. G)
  std::string out;                ///< npeff.recovered (required)
  bool json = false;
};

std::vector<int64_t> choose_components(const RecoverOptions& o, int64_t C) {
  std::vector<int64_t> ids;
  if (!o.components.empty()) {
    std::stringstream ss(o.components);
    std::string item;
    while (std::getline(ss, item, ',')) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(item, &used);
        if (used != item.size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      NPEFF_CHECK(id >= 0 && id < C, "--components: '", item, "' is not a component id in [0, ", C,
                  ")");
      ids.push_back(id);
    }
  } else if (o.random > 0) {
    NPEFF_CHECK(o.random <= C, "--random ", o.random, " exceeds the ", C, " components");
    std::vector<int64_t> all(static_cast<size_t>(C));
    for (int64_t i = 0; i < C; ++i) all[static_cast<size_t>(i)] = i;
    std::mt19937_64 rng(o.seed);
    std::shuffle(all.begin(), all.end(), rng);
    ids.assign(all.begin(), all.begin() + o.random);
    std::sort(ids.begin(), ids.end());
  } else {
    for (int64_t i = 0; i < C; ++i) ids.push_back(i);
  }
  return ids;
}

int run_recover(const RecoverOptions& o) {
  NPEFF_CHECK(o.reject_threshold >= 0 && o.reject_threshold <= 1,
              "--reject-threshold must lie in [0, 1], got ", o.reject_threshold);
  const decomposition::DecompositionData dec = decomposition::read_decomposition(o.decomposition);
  const pef::PefFileInfo info = pef::read_pef_info(o.pefs);
  NPEFF_CHECK(dec.has_projection && info.has_projection,
              "recover needs projected data: ", dec.has_projection ? o.pefs : o.decomposition,
              " records no projection");
  NPEFF_CHECK(dec.projection.same_as(info.projection), o.decomposition, " was made with (",
              dec.projection.describe(), ") but ", o.pefs, " with (", info.projection.describe(),
              "): they come from different projections or models");
  const io::File pf = io::File::open(o.pefs);
  NPEFF_CHECK(pf.root().has("parameters"), o.pefs,
              " has no /parameters table (not written by compute-pefs)");
  const io::Group params = pf.root().group("parameters");
  const std::vector<std::string> names = params.dataset("names").read_strings();
  std::vector<int64_t> offsets(names.size()), numel(names.size());
  params.dataset("offsets").read(offsets.data());
  params.dataset("numel").read(numel.data());
  const int64_t n = dec.projection.input_dim, d = dec.projection.dim;
  const int64_t C = dec.h.size(0);
  const std::vector<int64_t> ids = choose_components(o, C);
  const projection::Projection P = dec.projection.projection();
  const auto forward = [&](const at::Tensor& u) {
    return projection::project(P, u.view({1, n}), dec.projection.input_offset).view({d});
  };
  const auto adjoint = [&](const at::Tensor& y) {
    return projection::project_transpose(P, y.view({1, d}), dec.projection.input_offset, n)
        .view({n});
  };

  const int64_t K = static_cast<int64_t>(ids.size());
  std::vector<int64_t> offsets_out = {0}, indices, rejected(ids.size()), nnz, iterations;
  std::vector<float> values;
  std::vector<double> residual, norm;
  at::Tensor projected = at::zeros({K, d}, at::kFloat);
  at::Tensor tensor_nnz = at::zeros({K, static_cast<int64_t>(names.size())}, at::kLong);
  Progress progress("recover", K, "components", 5.0);
  for (int64_t k = 0; k < K; ++k) {
    const at::Tensor h = recovery::orthogonal_rejection(dec.h, ids[k], o.reject_threshold,
                                                        &rejected[static_cast<size_t>(k)]);
    projected[k].copy_(h);
    const recovery::FpcResult r = recovery::fpc(forward, adjoint, h.to(at::kFloat), n, o.fpc);
    const at::Tensor idx = r.u.nonzero().squeeze(1);
    const at::Tensor val = r.u.index_select(0, idx).contiguous();
    indices.insert(indices.end(), idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
    values.insert(values.end(), val.data_ptr<float>(), val.data_ptr<float>() + val.numel());
    offsets_out.push_back(static_cast<int64_t>(indices.size()));
    residual.push_back(r.relative_residual);
    norm.push_back(r.u.to(at::kDouble).norm().item<double>());
    nnz.push_back(idx.numel());
    iterations.push_back(r.iterations);
    for (size_t t = 0; t < names.size(); ++t) {
      tensor_nnz[k][static_cast<int64_t>(t)] =
          idx.ge(offsets[t]).logical_and(idx.lt(offsets[t] + numel[t])).sum().item<int64_t>();
    }
    progress.advance(1);
  }
  progress.finish();

  nlohmann::json fpc_json = {{"mu", o.fpc.mu},
                             {"beta", o.fpc.beta},
                             {"gamma", o.fpc.gamma},
                             {"tau", o.fpc.tau},
                             {"inner_iterations", o.fpc.inner_iterations},
                             {"cg_iterations", o.fpc.cg_iterations},
                             {"final_iterations", o.fpc.final_iterations},
                             {"xtol", o.fpc.xtol}};
  io::File f = io::File::create(o.out);
  io::write_header(f, {"npeff.recovered", 1},
                   {{"command", "recover"},
                    {"decomposition", o.decomposition},
                    {"pefs", o.pefs},
                    {"components", ids},
                    {"reject_threshold", o.reject_threshold},
                    {"seed", o.seed},
                    {"fpc", fpc_json}});
  f.root().create_dataset("components", io::DType::kInt64, {K}).write(ids.data());
  f.root().create_dataset("offsets", io::DType::kInt64, {K + 1}).write(offsets_out.data());
  const int64_t total = static_cast<int64_t>(indices.size());
  f.root().create_dataset("indices", io::DType::kInt64, {total}).write(indices.data());
  f.root().create_dataset("values", io::DType::kFloat32, {total}).write(values.data());
  f.root().create_dataset("relative_residual", io::DType::kFloat64, {K}).write(residual.data());
  f.root().create_dataset("norm", io::DType::kFloat64, {K}).write(norm.data());
  f.root().create_dataset("nnz", io::DType::kInt64, {K}).write(nnz.data());
  f.root().create_dataset("rejected", io::DType::kInt64, {K}).write(rejected.data());
  f.root().create_dataset("iterations", io::DType::kInt64, {K}).write(iterations.data());
  f.root()
      .create_dataset("projected", io::DType::kFloat32, {K, d})
      .write(projected.contiguous().data_ptr<float>());
  f.root()
      .create_dataset("tensor_nnz", io::DType::kInt64, {K, static_cast<int64_t>(names.size())})
      .write(tensor_nnz.contiguous().data_ptr<int64_t>());
  io::Group g = f.root().create_group("parameters");
  g.create_strings("names", names);
  g.create_dataset("offsets", io::DType::kInt64, {static_cast<int64_t>(names.size())})
      .write(offsets.data());
  g.create_dataset("numel", io::DType::kInt64, {static_cast<int64_t>(names.size())})
      .write(numel.data());
  projection::write_projection_group(f, dec.projection);
  f.commit();

  nlohmann::json per = nlohmann::json::array();
  for (int64_t k = 0; k < K; ++k) {
    nlohmann::json touched = nlohmann::json::object();
    for (size_t t = 0; t < names.size(); ++t) {
      const int64_t c = tensor_nnz[k][static_cast<int64_t>(t)].item<int64_t>();
      if (c > 0) touched[names[t]] = c;
    }
    per.push_back({{"component", ids[k]},
                   {"nnz", nnz[k]},
                   {"relative_residual", residual[k]},
                   {"rejected", rejected[k]},
                   {"parameters_touched", touched}});
  }
  return report_success(o.out,
                        {{"command", "recover"},
                         {"output", o.out},
                         {"components", per},
                         {"seconds", progress.elapsed_seconds()}},
                        o.json);
}

}  // namespace

void add_recover_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<RecoverOptions>();
  CLI::App* sub = app.add_subcommand(
      "recover",
      "Recover sparse parameter-space directions u of components (A u ~= h_j): optional\n"
      "orthogonal rejection against the other components (Section 3.2), then FPC compressed\n"
      "sensing, min |u|_1 + 1/(2 mu) |A u - h|^2 (Appendix G), through the projection the PEFs\n"
      "were made with. Writes npeff.recovered (sparse u, residuals, parameters touched).\n"
      "Examples:\n"
      "  npeff recover --decomposition sst2.npeff.h5 --pefs sst2.pefs.h5 --random 16 -o r.h5\n"
      "  npeff recover -D d.h5 -p p.h5 --components 3,17 --reject-threshold 0 -o r.h5 --json");
  sub->add_option("--decomposition,-D", o->decomposition, "npeff.decomposition file")->required();
  sub->add_option("--pefs,-p", o->pefs,
                  "The npeff.pefs file it was made from (for the "
                  "projection check and the parameter names)")
      ->required();
  sub->add_option("--components", o->components, "Comma-separated component ids (default all)");
  sub->add_option("--random", o->random, "Recover N components chosen at random (--seed)");
  sub->add_option("--seed", o->seed, "Seed of --random")->capture_default_str();
  sub->add_option("--reject-threshold", o->reject_threshold,
                  "Reject components with |cos| below this (0: no rejection)")
      ->capture_default_str();
  sub->add_option("--mu", o->fpc.mu, "FPC mu")->capture_default_str();
  sub->add_option("--beta", o->fpc.beta, "FPC continuation factor")->capture_default_str();
  sub->add_option("--gamma", o->fpc.gamma, "FPC first threshold, x |A^T h|_inf")
      ->capture_default_str();
  sub->add_option("--cg-iterations", o->fpc.cg_iterations, "Subspace CG steps per stage")
      ->capture_default_str();
  sub->add_option("--max-final-stages", o->fpc.final_iterations, "Most stages at the target mu")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &runner] { runner = [o] { return run_recover(*o); }; });
}

}  // namespace npeff::cli
