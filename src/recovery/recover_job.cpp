#include "npeff/recovery/recover_job.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"
#include "npeff/projection/projection.h"

namespace npeff::recovery {
namespace {

constexpr const char* kPartSchema = "npeff.recovered_part";

// One component's rows of the output (a piece of the io::ResumeDir).
struct Piece {
  RecoveredComponent summary;
  std::vector<std::int64_t> indices;
  std::vector<float> values;
  std::vector<float> projected;          // [d]
  std::vector<std::int64_t> tensor_nnz;  // [T]
};

std::string piece_name(std::size_t k) {
  return "component-" + std::to_string(k) + ".h5";
}

void write_piece(io::File& f, const Piece& p) {
  io::write_header(f, {kPartSchema, 1}, nlohmann::json::object());
  const RecoveredComponent& s = p.summary;
  f.root().set_attr("component", s.component);
  f.root().set_attr("relative_residual", s.relative_residual);
  f.root().set_attr("norm", s.norm);
  f.root().set_attr("iterations", s.iterations);
  f.root().set_attr("rejected", s.rejected);
  const auto n = [](const auto& v) { return static_cast<std::int64_t>(v.size()); };
  f.root().create_dataset("indices", io::DType::kInt64, {n(p.indices)}).write(p.indices.data());
  f.root().create_dataset("values", io::DType::kFloat32, {n(p.values)}).write(p.values.data());
  f.root()
      .create_dataset("projected", io::DType::kFloat32, {n(p.projected)})
      .write(p.projected.data());
  f.root()
      .create_dataset("tensor_nnz", io::DType::kInt64, {n(p.tensor_nnz)})
      .write(p.tensor_nnz.data());
}

Piece read_piece(const io::File& f, std::int64_t component, std::int64_t d, std::int64_t T) {
  io::expect_schema(f, kPartSchema, 1);
  Piece p;
  RecoveredComponent& s = p.summary;
  s.component = f.root().attr_int("component");
  NPEFF_CHECK(s.component == component, f.path(), " holds component ", s.component, ", expected ",
              component, ": delete the folder to start over");
  s.relative_residual = f.root().attr_double("relative_residual");
  s.norm = f.root().attr_double("norm");
  s.iterations = f.root().attr_int("iterations");
  s.rejected = f.root().attr_int("rejected");
  const io::Dataset idx = f.root().dataset("indices");
  s.nnz = idx.shape().at(0);
  f.root().dataset("values").expect(io::DType::kFloat32, {s.nnz});
  f.root().dataset("projected").expect(io::DType::kFloat32, {d});
  f.root().dataset("tensor_nnz").expect(io::DType::kInt64, {T});
  p.indices.resize(static_cast<std::size_t>(s.nnz));
  p.values.resize(static_cast<std::size_t>(s.nnz));
  p.projected.resize(static_cast<std::size_t>(d));
  p.tensor_nnz.resize(static_cast<std::size_t>(T));
  idx.read(p.indices.data());
  f.root().dataset("values").read(p.values.data());
  f.root().dataset("projected").read(p.projected.data());
  f.root().dataset("tensor_nnz").read(p.tensor_nnz.data());
  return p;
}

nlohmann::json fpc_json(const FpcOptions& f) {
  return {{"mu", f.mu},
          {"beta", f.beta},
          {"gamma", f.gamma},
          {"tau", f.tau},
          {"inner_iterations", f.inner_iterations},
          {"admit_fraction", f.admit_fraction},
          {"cg_iterations", f.cg_iterations},
          {"final_iterations", f.final_iterations},
          {"xtol", f.xtol}};
}

}  // namespace

std::vector<std::int64_t> choose_components(const RecoverJobOptions& o, std::int64_t C) {
  std::vector<std::int64_t> ids;
  if (!o.component_ids.empty()) {
    std::stringstream ss(o.component_ids);
    std::string item;
    while (std::getline(ss, item, ',')) {
      std::int64_t id = -1;
      try {
        std::size_t used = 0;
        id = std::stoll(item, &used);
        if (used != item.size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      NPEFF_CHECK(id >= 0 && id < C, "--component-ids: '", item, "' is not a component id in [0, ",
                  C, ")");
      ids.push_back(id);
    }
  } else if (o.random > 0) {
    NPEFF_CHECK(o.random <= C, "--random ", o.random, " exceeds the ", C, " components");
    std::vector<std::int64_t> all(static_cast<std::size_t>(C));
    for (std::int64_t i = 0; i < C; ++i) all[static_cast<std::size_t>(i)] = i;
    std::mt19937_64 rng(o.seed);
    std::shuffle(all.begin(), all.end(), rng);
    ids.assign(all.begin(), all.begin() + o.random);
    std::sort(ids.begin(), ids.end());
  } else {
    for (std::int64_t i = 0; i < C; ++i) ids.push_back(i);
  }
  return ids;
}

RecoverJobSummary run_recover_job(const RecoverJobOptions& o) {
  NPEFF_CHECK(o.reject_threshold >= 0 && o.reject_threshold <= 1,
              "--reject-threshold must lie in [0, 1], got ", o.reject_threshold);
  const decomposition::DecompositionData dec =
      decomposition::read_decomposition(o.decomposition, /*with_w=*/false);
  const io::PefFileInfo info = io::read_pef_info(o.pefs);
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
  const std::int64_t T = static_cast<std::int64_t>(names.size());
  std::vector<std::int64_t> offsets(names.size()), numel(names.size());
  params.dataset("offsets").read(offsets.data());
  params.dataset("numel").read(numel.data());
  const std::int64_t n = dec.projection.input_dim, d = dec.projection.dim;
  const std::vector<std::int64_t> ids = choose_components(o, dec.h.size(0));
  const projection::Projection P = dec.projection.projection();
  const auto forward = [&](const at::Tensor& u) {
    return projection::project(P, u.view({1, n}), dec.projection.input_offset).view({d});
  };
  const auto adjoint = [&](const at::Tensor& y) {
    return projection::project_transpose(P, y.view({1, d}), dec.projection.input_offset, n)
        .view({n});
  };

  const nlohmann::json settings = {{"decomposition", io::file_fingerprint(o.decomposition)},
                                   {"pefs", io::file_fingerprint(o.pefs)},
                                   {"components", ids},
                                   {"reject_threshold", o.reject_threshold},
                                   {"fpc", fpc_json(o.fpc)},
                                   {"device", o.device.str()}};  // float32 summation order
  io::ResumeDir resume(o.out, settings);
  const std::int64_t K = static_cast<std::int64_t>(ids.size());
  RecoverJobSummary summary;
  std::vector<Piece> pieces;
  Progress progress("recover", K, "components", 5.0);
  for (std::int64_t k = 0; k < K; ++k) {
    const std::string name = piece_name(static_cast<std::size_t>(k));
    if (resume.has(name)) {
      pieces.push_back(read_piece(resume.open(name), ids[k], d, T));
      ++summary.reused;
      progress.advance(1);
      continue;
    }
    Piece p;
    RecoveredComponent& s = p.summary;
    s.component = ids[k];
    const at::Tensor h = orthogonal_rejection(dec.h, ids[k], o.reject_threshold, &s.rejected);
    const at::Tensor hf = h.to(at::kFloat).contiguous();
    p.projected.assign(hf.data_ptr<float>(), hf.data_ptr<float>() + d);
    const FpcResult r = fpc(forward, adjoint, hf.to(o.device), n, o.fpc);
    // Only the nonzeros come back to the host.
    const at::Tensor idx_dev = r.u.nonzero().squeeze(1);
    const at::Tensor idx = idx_dev.cpu().contiguous();
    const at::Tensor val = r.u.index_select(0, idx_dev).cpu().contiguous();
    p.indices.assign(idx.data_ptr<std::int64_t>(), idx.data_ptr<std::int64_t>() + idx.numel());
    p.values.assign(val.data_ptr<float>(), val.data_ptr<float>() + val.numel());
    s.relative_residual = r.relative_residual;
    s.norm = std::sqrt(val.square().sum(at::kDouble).item<double>());
    s.nnz = idx.numel();
    s.iterations = r.iterations;
    for (std::int64_t t = 0; t < T; ++t) {
      const std::size_t i = static_cast<std::size_t>(t);
      p.tensor_nnz.push_back(
          idx.ge(offsets[i]).logical_and(idx.lt(offsets[i] + numel[i])).sum().item<std::int64_t>());
    }
    io::File f = resume.create(name);
    write_piece(f, p);
    f.commit();  // the component exists whole or not at all
    pieces.push_back(std::move(p));
    progress.advance(1);
  }
  progress.finish();
  if (summary.reused > 0)
    log::info("recover: reused ", summary.reused, " components from ", resume.dir());

  std::vector<std::int64_t> offsets_out = {0}, indices, rejected, nnz, iterations, tensor_nnz;
  std::vector<float> values, projected;
  std::vector<double> residual, norm;
  for (Piece& p : pieces) {
    RecoveredComponent& s = p.summary;
    indices.insert(indices.end(), p.indices.begin(), p.indices.end());
    values.insert(values.end(), p.values.begin(), p.values.end());
    offsets_out.push_back(static_cast<std::int64_t>(indices.size()));
    projected.insert(projected.end(), p.projected.begin(), p.projected.end());
    tensor_nnz.insert(tensor_nnz.end(), p.tensor_nnz.begin(), p.tensor_nnz.end());
    residual.push_back(s.relative_residual);
    norm.push_back(s.norm);
    nnz.push_back(s.nnz);
    iterations.push_back(s.iterations);
    rejected.push_back(s.rejected);
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t c = p.tensor_nnz[static_cast<std::size_t>(t)];
      if (c > 0) s.parameters_touched.emplace_back(names[static_cast<std::size_t>(t)], c);
    }
    summary.components.push_back(s);
  }

  io::File f = io::File::create(o.out);
  nlohmann::json provenance = settings;
  provenance["command"] = "recover";
  provenance["seed"] = o.seed;
  io::write_header(f, {"npeff.recovered", 1}, provenance);
  io::Group& root = f.root();
  root.create_dataset("components", io::DType::kInt64, {K}).write(ids.data());
  root.create_dataset("offsets", io::DType::kInt64, {K + 1}).write(offsets_out.data());
  const std::int64_t total = static_cast<std::int64_t>(indices.size());
  root.create_dataset("indices", io::DType::kInt64, {total}).write(indices.data());
  root.create_dataset("values", io::DType::kFloat32, {total}).write(values.data());
  root.create_dataset("relative_residual", io::DType::kFloat64, {K}).write(residual.data());
  root.create_dataset("norm", io::DType::kFloat64, {K}).write(norm.data());
  root.create_dataset("nnz", io::DType::kInt64, {K}).write(nnz.data());
  root.create_dataset("rejected", io::DType::kInt64, {K}).write(rejected.data());
  root.create_dataset("iterations", io::DType::kInt64, {K}).write(iterations.data());
  root.create_dataset("projected", io::DType::kFloat32, {K, d}).write(projected.data());
  root.create_dataset("tensor_nnz", io::DType::kInt64, {K, T}).write(tensor_nnz.data());
  io::Group g = root.create_group("parameters");
  g.create_strings("names", names);
  g.create_dataset("offsets", io::DType::kInt64, {T}).write(offsets.data());
  g.create_dataset("numel", io::DType::kInt64, {T}).write(numel.data());
  projection::write_projection_group(f, dec.projection);
  f.commit();
  resume.finish();
  summary.seconds = progress.elapsed_seconds();
  return summary;
}

}  // namespace npeff::recovery
