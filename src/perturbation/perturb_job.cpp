#include "npeff/perturbation/perturb_job.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <unordered_map>

#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/paths.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"
#include "npeff/model/loader.h"
#include "npeff/perturbation/perturbation.h"

namespace npeff::perturbation {
namespace {

constexpr const char* kPartSchema = "npeff.perturbation_part";
constexpr std::int64_t kPartVersion = 2;  // 2: the settings live in OUT.partial.d/settings.json

std::string piece_name(std::size_t k) {
  return "component-" + std::to_string(k) + ".h5";
}

void write_piece(io::File& f, const PerturbedComponent& r) {
  io::write_header(f, {kPartSchema, kPartVersion}, nlohmann::json::object());
  f.root().set_attr("component", r.component);
  f.root().set_attr("kl_top", std::vector<double>{r.kl_top[0], r.kl_top[1]});
  f.root().set_attr("kl_baseline", std::vector<double>{r.kl_baseline[0], r.kl_baseline[1]});
  f.root().set_attr("ratio", r.ratio);
  f.root().set_attr("norm_ratio", r.norm_ratio);
  f.root().set_attr("sign", r.sign);
  f.root().set_attr("top_ids", r.top_ids);
  f.root().set_attr("top_kl", r.top_kl);
}

PerturbedComponent read_piece(const io::File& f, std::int64_t component) {
  io::expect_schema(f, kPartSchema, kPartVersion);
  PerturbedComponent r;
  r.component = f.root().attr_int("component");
  NPEFF_CHECK(r.component == component, f.path(), " holds component ", r.component, ", expected ",
              component, ": delete the folder to start over");
  const auto top = f.root().attr_double_vector("kl_top");
  const auto base = f.root().attr_double_vector("kl_baseline");
  NPEFF_CHECK(top.size() == 2 && base.size() == 2, f.path(), ": malformed kl_top/kl_baseline");
  r.kl_top[0] = top[0], r.kl_top[1] = top[1];
  r.kl_baseline[0] = base[0], r.kl_baseline[1] = base[1];
  r.ratio = f.root().attr_double("ratio");
  r.norm_ratio = f.root().attr_double("norm_ratio");
  r.sign = f.root().attr_int("sign");
  r.top_ids = f.root().attr_int_vector("top_ids");
  r.top_kl = f.root().attr_double_vector("top_kl");
  return r;
}

// The decomposition's rows as examples of the PEF file (it may have dropped PEFs): prompt,
// label and PEF norm (parameter space when recorded) of each row.
struct Rows {
  std::vector<task::Example> examples;
  std::vector<double> norms;
};

Rows map_rows(const io::File& pf, const io::PefFileInfo& info,
              const decomposition::DecompositionData& dec, const std::string& dec_path) {
  std::vector<std::int64_t> pef_ids(static_cast<std::size_t>(info.examples));
  pf.root().dataset("example_ids").read(pef_ids.data());  // (not the PEFs themselves)
  const auto prompts = pf.root().dataset("prompts").read_strings();
  std::vector<std::int64_t> labels(static_cast<std::size_t>(info.examples), -1);
  if (pf.root().has("labels")) pf.root().dataset("labels").read(labels.data());
  std::vector<double> norms(static_cast<std::size_t>(info.examples));
  pf.root().dataset(pf.root().has("param_norms") ? "param_norms" : "raw_norms").read(norms.data());
  std::unordered_map<std::int64_t, std::int64_t> row_of_id;
  for (std::int64_t i = 0; i < info.examples; ++i)
    row_of_id[pef_ids[static_cast<std::size_t>(i)]] = i;
  Rows rows;
  const at::Tensor ids = dec.example_ids.to(at::kLong).contiguous();
  const std::int64_t* id = ids.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < ids.numel(); ++i) {
    const auto it = row_of_id.find(id[i]);
    NPEFF_CHECK(it != row_of_id.end(), dec_path, " has example id ", id[i], " which ", info.path,
                " does not hold");
    const std::size_t r = static_cast<std::size_t>(it->second);
    rows.examples.push_back({id[i], prompts[r], labels[r]});
    rows.norms.push_back(norms[r]);
  }
  return rows;
}

}  // namespace

PerturbJobSummary run_perturb_job(const PerturbJobOptions& o) {
  NPEFF_CHECK(o.magnitude > 0, "--magnitude must be positive, got ", o.magnitude);
  NPEFF_CHECK(o.top_k > 0 && o.baseline > 0 && o.batch_size > 0,
              "--top-examples, --baseline and --batch-size must be positive");
  // Inputs and their consistency.
  const io::File rf = io::File::open(o.recovered);
  io::expect_schema(rf, "npeff.recovered", 1);
  const decomposition::DecompositionData dec = decomposition::read_decomposition(o.decomposition);
  const io::PefFileInfo info = io::read_pef_info(o.pefs);
  projection::ProjectionRecord rec_proj;
  NPEFF_CHECK(projection::read_projection_group(rf, rec_proj) && info.has_projection &&
                  rec_proj.same_as(info.projection) && dec.has_projection &&
                  dec.projection.same_as(info.projection),
              o.recovered, ", ", o.decomposition, " and ", o.pefs,
              " do not share one projection: they come from different runs");
  const io::File pf = io::File::open(o.pefs);
  for (const char* name : {"prompts", "parameters"}) {
    NPEFF_CHECK(pf.root().has(name), o.pefs, " has no /", name, " (not written by compute-pefs)");
  }
  const nlohmann::json prov = io::read_provenance(pf);
  NPEFF_CHECK(prov.contains("task") && prov.contains("params"), o.pefs,
              " records no task or parameter selection in its provenance");
  const task::Task task = task::Task::from_json_text(prov["task"].dump(), o.pefs + ":provenance");
  const std::string model_path = o.model.empty() ? prov.value("model", std::string()) : o.model;
  model::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer.empty() ? prov.value("tokenizer", std::string()) : o.tokenizer;
  lo.require_tokenizer = true;

  const std::vector<std::int64_t> components = [&] {
    std::vector<std::int64_t> c(
        static_cast<std::size_t>(rf.root().dataset("components").shape()[0]));
    rf.root().dataset("components").read(c.data());
    return c;
  }();
  for (const std::int64_t c : components)
    NPEFF_CHECK(c >= 0 && c < dec.w.size(1), o.recovered, " names component ", c, ", but ",
                o.decomposition, " has ", dec.w.size(1));
  nlohmann::json settings = {{"recovered", io::file_fingerprint(o.recovered)},
                             {"decomposition", io::file_fingerprint(o.decomposition)},
                             {"pefs", io::file_fingerprint(o.pefs)},
                             {"model", absolute_path(model_path)},
                             {"magnitude", o.magnitude},
                             {"top_k", o.top_k},
                             {"baseline", o.baseline},
                             {"seed", o.seed},
                             {"batch_size", o.batch_size},
                             {"device", o.device}};
  NPEFF_CHECK(!model_path.empty(), o.pefs, " records no model: give --model");
  settings["model_file"] = io::file_fingerprint(model_path);
  if (!lo.tokenizer_path.empty())
    settings["tokenizer_file"] = io::file_fingerprint(lo.tokenizer_path);
  io::ResumeDir resume(o.out, settings);  // refuses other settings before loading the model

  model::LoadedModel loaded = model::load_model(model_path, lo);
  const c10::Device dev = select_device(o.device);
  if (dev.is_cuda()) loaded.model->to(dev, at::kFloat);
  const auto selection =
      model::ParameterSelection::parse(*loaded.model, prov["params"].get<std::string>());
  const auto names = pf.root().group("parameters").dataset("names").read_strings();
  NPEFF_CHECK(
      selection.total() == info.projection.input_dim && selection.slices().size() == names.size(),
      "the model ", model_path, " selects ", selection.total(), " parameters with '",
      selection.patterns(), "', but ", o.pefs, " was computed over ", info.projection.input_dim,
      ": a different model");

  const Rows rows = map_rows(pf, info, dec, o.decomposition);
  const std::int64_t m = dec.w.size(0);
  // Baseline: a seeded random draw of examples.
  std::vector<std::int64_t> order(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(o.seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<std::size_t>(std::min(o.baseline, m)));
  std::vector<task::Example> baseline;
  double baseline_norm = 0;
  for (const std::int64_t r : order) {
    baseline.push_back(rows.examples[static_cast<std::size_t>(r)]);
    baseline_norm += rows.norms[static_cast<std::size_t>(r)] / static_cast<double>(order.size());
  }

  std::vector<std::int64_t> offsets(components.size() + 1);
  rf.root().dataset("offsets").read(offsets.data());
  const std::int64_t total = offsets.back();
  at::Tensor indices = at::empty({total}, at::kLong), values = at::empty({total}, at::kFloat);
  rf.root().dataset("indices").read(indices.data_ptr<std::int64_t>());
  rf.root().dataset("values").read(values.data_ptr<float>());

  log::info("perturb: ", components.size(), " components, magnitude ", o.magnitude, ", top ",
            o.top_k, ", baseline ", baseline.size(), " of ", m, " examples");
  PerturbJobSummary summary;
  Progress progress("perturb", static_cast<std::int64_t>(components.size()), "components", 5.0);
  at::Tensor base_log_p;  // computed once, only when a component is left to measure
  for (std::size_t k = 0; k < components.size(); ++k) {
    const std::string name = piece_name(k);
    if (resume.has(name)) {
      summary.components.push_back(read_piece(resume.open(name), components[k]));
      ++summary.reused;
      progress.advance(1);
      continue;
    }
    if (!base_log_p.defined())
      base_log_p = task_log_probs(*loaded.model, *loaded.tokenizer, task, baseline, o.batch_size);
    PerturbedComponent r;
    r.component = components[k];
    const std::vector<std::int64_t> top_rows_k = top_rows(dec.w.select(1, r.component), o.top_k);
    std::vector<task::Example> top;
    double top_norm = 0;
    for (const std::int64_t row : top_rows_k) {
      top.push_back(rows.examples[static_cast<std::size_t>(row)]);
      top_norm +=
          rows.norms[static_cast<std::size_t>(row)] / static_cast<double>(top_rows_k.size());
      r.top_ids.push_back(rows.examples[static_cast<std::size_t>(row)].id);
    }
    const std::int64_t first = offsets[k], count = offsets[k + 1] - offsets[k];
    const SparseVector v{indices.narrow(0, first, count), values.narrow(0, first, count)};
    NPEFF_CHECK(v.indices.numel() > 0, "component ", r.component,
                " was recovered as the zero vector: nothing to perturb");
    const at::Tensor top_log_p =
        task_log_probs(*loaded.model, *loaded.tokenizer, task, top, o.batch_size);
    const Selectivity s =
        measure_selectivity(*loaded.model, *loaded.tokenizer, task, selection, v, o.magnitude, top,
                            top_log_p, baseline, base_log_p, o.batch_size);
    for (int i = 0; i < 2; ++i) {
      r.kl_top[i] = s.kl_top[i];
      r.kl_baseline[i] = s.kl_baseline[i];
    }
    r.ratio = s.best_ratio();
    r.sign = s.best_sign();
    const at::Tensor kl = s.kl_top_examples[r.sign > 0 ? 0 : 1].to(at::kDouble).contiguous();
    r.top_kl.assign(kl.data_ptr<double>(), kl.data_ptr<double>() + kl.numel());
    r.norm_ratio = mean_ratio(top_norm, baseline_norm);
    io::File f = resume.create(name);
    write_piece(f, r);
    f.commit();  // the component exists whole or not at all
    summary.components.push_back(std::move(r));
    progress.advance(1);
  }
  progress.finish();
  if (summary.reused > 0)
    log::info("perturb: reused ", summary.reused, " components from ", resume.dir());

  std::vector<double> ratios, norm_ratios;
  for (const auto& r : summary.components) {
    ratios.push_back(r.ratio);
    norm_ratios.push_back(r.norm_ratio);
  }
  summary.geometric_mean_kl_ratio = geometric_mean(ratios);
  summary.geometric_mean_norm_ratio = geometric_mean(norm_ratios);
  summary.baseline_examples = static_cast<std::int64_t>(baseline.size());
  const std::int64_t K = static_cast<std::int64_t>(summary.components.size()), tk = o.top_k;
  io::File f = io::File::create(o.out);
  nlohmann::json provenance = settings;
  provenance["command"] = "perturb";
  io::write_header(f, {"npeff.perturbation", 1}, provenance);
  std::vector<std::int64_t> comp, sign, top_ids(static_cast<std::size_t>(K * tk), -1);
  std::vector<double> kl_top, kl_base, top_kl(static_cast<std::size_t>(K * tk), 0.0);
  for (std::int64_t i = 0; i < K; ++i) {
    const auto& r = summary.components[static_cast<std::size_t>(i)];
    comp.push_back(r.component);
    sign.push_back(r.sign);
    kl_top.insert(kl_top.end(), {r.kl_top[0], r.kl_top[1]});
    kl_base.insert(kl_base.end(), {r.kl_baseline[0], r.kl_baseline[1]});
    for (std::size_t j = 0; j < r.top_ids.size(); ++j) {
      top_ids[static_cast<std::size_t>(i * tk) + j] = r.top_ids[j];
      top_kl[static_cast<std::size_t>(i * tk) + j] = r.top_kl[j];
    }
  }
  io::Group& root = f.root();
  root.create_dataset("components", io::DType::kInt64, {K}).write(comp.data());
  root.create_dataset("kl_ratio", io::DType::kFloat64, {K}).write(ratios.data());
  root.create_dataset("norm_ratio", io::DType::kFloat64, {K}).write(norm_ratios.data());
  root.create_dataset("sign", io::DType::kInt64, {K}).write(sign.data());
  root.create_dataset("kl_top", io::DType::kFloat64, {K, 2}).write(kl_top.data());
  root.create_dataset("kl_baseline", io::DType::kFloat64, {K, 2}).write(kl_base.data());
  root.create_dataset("top_example_ids", io::DType::kInt64, {K, tk}).write(top_ids.data());
  root.create_dataset("top_kl", io::DType::kFloat64, {K, tk}).write(top_kl.data());
  std::vector<std::int64_t> base_ids;
  for (const auto& e : baseline) base_ids.push_back(e.id);
  root.create_dataset("baseline_example_ids", io::DType::kInt64,
                      {static_cast<std::int64_t>(base_ids.size())})
      .write(base_ids.data());
  root.set_attr("geometric_mean_kl_ratio", summary.geometric_mean_kl_ratio);
  root.set_attr("geometric_mean_norm_ratio", summary.geometric_mean_norm_ratio);
  f.commit();
  resume.finish();
  summary.seconds = progress.elapsed_seconds();
  return summary;
}

}  // namespace npeff::perturbation
