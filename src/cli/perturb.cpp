// npeff perturb: does perturbing the parameters along a recovered component direction
// selectively change the predictions on that component's top examples? (paper Sections 2.2.1,
// 3.2, Appendix G, Table 2). Writes npeff.perturbation; resumable per component.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <random>
#include <unordered_map>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/progress.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"
#include "npeff/model/loader.h"
#include "npeff/pef/pef_file.h"
#include "npeff/perturbation/perturbation.h"

namespace npeff::cli {
namespace {

namespace fs = std::filesystem;

struct PerturbOptions {
  std::string recovered;      ///< npeff.recovered (required)
  std::string decomposition;  ///< npeff.decomposition (required): W gives the top examples
  std::string pefs;           ///< npeff.pefs (required): prompts, norms, model, task
  std::string model;          ///< default: the model recorded in the PEF file
  std::string tokenizer;
  double magnitude = 20;    ///< ||delta|| (App. G: 20)
  int64_t top_k = 16;       ///< top examples per component (by coefficient)
  int64_t baseline = 1000;  ///< random baseline examples
  uint64_t seed = 0;        ///< baseline draw
  int64_t batch_size = 16;
  std::string out;
  bool json = false;
};

struct ComponentResult {
  int64_t component = 0;
  double kl_top[2] = {0, 0}, kl_baseline[2] = {0, 0}, ratio = 1, norm_ratio = 1;
  int64_t sign = 1;
  std::vector<int64_t> top_ids;
  std::vector<double> top_kl;  // at the better sign
};

void write_component(const std::string& path, const std::string& config, const ComponentResult& r) {
  io::File f = io::File::create(path);
  io::write_header(f, {"npeff.perturbation_part", 1}, nlohmann::json::object());
  f.root().set_attr("resume_config", config);
  f.root().set_attr("component", r.component);
  f.root().set_attr("kl_top", std::vector<double>{r.kl_top[0], r.kl_top[1]});
  f.root().set_attr("kl_baseline", std::vector<double>{r.kl_baseline[0], r.kl_baseline[1]});
  f.root().set_attr("ratio", r.ratio);
  f.root().set_attr("norm_ratio", r.norm_ratio);
  f.root().set_attr("sign", r.sign);
  f.root().set_attr("top_ids", r.top_ids);
  f.root().set_attr("top_kl", r.top_kl);
  f.commit();
}

bool read_component(const std::string& path, const std::string& config, ComponentResult& r) {
  if (!fs::exists(path)) return false;
  const io::File f = io::File::open(path);
  if (f.root().attr_string("resume_config") != config) return false;
  r.component = f.root().attr_int("component");
  const auto top = f.root().attr_double_vector("kl_top");
  const auto base = f.root().attr_double_vector("kl_baseline");
  r.kl_top[0] = top[0], r.kl_top[1] = top[1], r.kl_baseline[0] = base[0],
  r.kl_baseline[1] = base[1];
  r.ratio = f.root().attr_double("ratio");
  r.norm_ratio = f.root().attr_double("norm_ratio");
  r.sign = f.root().attr_int("sign");
  r.top_ids = f.root().attr_int_vector("top_ids");
  r.top_kl = f.root().attr_double_vector("top_kl");
  return true;
}

int run_perturb(const PerturbOptions& o, const GlobalOptions& g) {
  NPEFF_CHECK(o.magnitude > 0, "--magnitude must be positive, got ", o.magnitude);
  NPEFF_CHECK(o.top_k > 0 && o.baseline > 0 && o.batch_size > 0,
              "--top-k, --baseline and --batch-size must be positive");
  // Inputs and their consistency.
  const io::File rf = io::File::open(o.recovered);
  io::expect_schema(rf, "npeff.recovered", 1);
  const decomposition::DecompositionData dec = decomposition::read_decomposition(o.decomposition);
  const pef::PefFileInfo info = pef::read_pef_info(o.pefs);
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
  const pef::Task task = pef::Task::from_json_text(prov["task"].dump(), o.pefs + ":provenance");
  const std::string model_path = o.model.empty() ? prov.value("model", std::string()) : o.model;
  model::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer.empty() ? prov.value("tokenizer", std::string()) : o.tokenizer;
  lo.require_tokenizer = true;
  model::LoadedModel loaded = model::load_model(model_path, lo);
  const c10::Device dev = select_device(g.device);
  if (dev.is_cuda()) loaded.model->to(dev, at::kFloat);
  const auto selection =
      model::ParameterSelection::parse(*loaded.model, prov["params"].get<std::string>());
  const auto names = pf.root().group("parameters").dataset("names").read_strings();
  NPEFF_CHECK(
      selection.total() == info.projection.input_dim && selection.slices().size() == names.size(),
      "the model ", model_path, " selects ", selection.total(), " parameters with '",
      selection.patterns(), "', but ", o.pefs, " was computed over ", info.projection.input_dim,
      ": a different model");

  // Examples in the decomposition's row order (it may have dropped PEFs).
  std::vector<int64_t> pef_ids(static_cast<size_t>(info.examples));
  pf.root().dataset("example_ids").read(pef_ids.data());  // (not the PEFs themselves)
  const auto prompts = pf.root().dataset("prompts").read_strings();
  std::vector<int64_t> labels(static_cast<size_t>(info.examples), -1);
  if (pf.root().has("labels")) pf.root().dataset("labels").read(labels.data());
  std::vector<double> norms(static_cast<size_t>(info.examples));
  pf.root().dataset(pf.root().has("param_norms") ? "param_norms" : "raw_norms").read(norms.data());
  std::unordered_map<int64_t, int64_t> row_of_id;
  for (int64_t i = 0; i < info.examples; ++i) row_of_id[pef_ids[static_cast<size_t>(i)]] = i;
  const int64_t m = dec.w.size(0);
  std::vector<pef::Example> examples;
  std::vector<double> example_norm;
  for (int64_t i = 0; i < m; ++i) {
    const auto it = row_of_id.find(dec.example_ids[i].item<int64_t>());
    NPEFF_CHECK(it != row_of_id.end(), o.decomposition, " has example id ",
                dec.example_ids[i].item<int64_t>(), " which ", o.pefs, " does not hold");
    const size_t r = static_cast<size_t>(it->second);
    examples.push_back({dec.example_ids[i].item<int64_t>(), prompts[r], labels[r]});
    example_norm.push_back(norms[r]);
  }
  // Baseline: a seeded random draw of examples.
  std::vector<int64_t> order(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(o.seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<size_t>(std::min(o.baseline, m)));
  std::vector<pef::Example> baseline;
  double baseline_norm = 0;
  for (int64_t r : order) {
    baseline.push_back(examples[static_cast<size_t>(r)]);
    baseline_norm += example_norm[static_cast<size_t>(r)] / static_cast<double>(order.size());
  }

  const auto components = [&] {
    std::vector<int64_t> c(static_cast<size_t>(rf.root().dataset("components").shape()[0]));
    rf.root().dataset("components").read(c.data());
    return c;
  }();
  std::vector<int64_t> offsets(components.size() + 1);
  rf.root().dataset("offsets").read(offsets.data());
  const int64_t total = offsets.back();
  at::Tensor indices = at::empty({total}, at::kLong), values = at::empty({total}, at::kFloat);
  rf.root().dataset("indices").read(indices.data_ptr<int64_t>());
  rf.root().dataset("values").read(values.data_ptr<float>());

  const std::string config = nlohmann::json{
      {"recovered", o.recovered}, {"decomposition", o.decomposition},
      {"pefs", o.pefs},           {"model", model_path},
      {"magnitude", o.magnitude}, {"top_k", o.top_k},
      {"baseline", o.baseline},   {"seed", o.seed},
      {"device", g.device}}.dump();
  const std::string parts = o.out + ".partial.d";
  fs::create_directories(parts);
  log::info("perturb: ", components.size(), " components, magnitude ", o.magnitude, ", top ",
            o.top_k, ", baseline ", baseline.size(), " of ", m, " examples");
  const at::Tensor base_log_p =
      perturbation::task_log_probs(*loaded.model, *loaded.tokenizer, task, baseline, o.batch_size);
  Progress progress("perturb", static_cast<int64_t>(components.size()), "components", 5.0);
  std::vector<ComponentResult> results;
  for (size_t k = 0; k < components.size(); ++k) {
    const std::string part = parts + "/component-" + std::to_string(k) + ".h5";
    ComponentResult r;
    if (!read_component(part, config, r)) {
      r.component = components[k];
      NPEFF_CHECK(r.component >= 0 && r.component < dec.w.size(1), o.recovered, " names component ",
                  r.component, ", but ", o.decomposition, " has ", dec.w.size(1));
      const std::vector<int64_t> rows =
          perturbation::top_rows(dec.w.select(1, r.component), o.top_k);
      std::vector<pef::Example> top;
      double top_norm = 0;
      for (int64_t row : rows) {
        top.push_back(examples[static_cast<size_t>(row)]);
        top_norm += example_norm[static_cast<size_t>(row)] / static_cast<double>(rows.size());
        r.top_ids.push_back(examples[static_cast<size_t>(row)].id);
      }
      const perturbation::SparseVector v{indices.narrow(0, offsets[k], offsets[k + 1] - offsets[k]),
                                         values.narrow(0, offsets[k], offsets[k + 1] - offsets[k])};
      NPEFF_CHECK(v.indices.numel() > 0, "component ", r.component,
                  " was recovered as the zero vector: nothing to perturb");
      const at::Tensor top_log_p =
          perturbation::task_log_probs(*loaded.model, *loaded.tokenizer, task, top, o.batch_size);
      const perturbation::Selectivity s = perturbation::measure_selectivity(
          *loaded.model, *loaded.tokenizer, task, selection, v, o.magnitude, top, top_log_p,
          baseline, base_log_p, o.batch_size);
      for (int i = 0; i < 2; ++i) {
        r.kl_top[i] = s.kl_top[i];
        r.kl_baseline[i] = s.kl_baseline[i];
      }
      r.ratio = s.best_ratio();
      r.sign = s.best_sign();
      const at::Tensor kl = s.kl_top_examples[r.sign > 0 ? 0 : 1];
      for (int64_t i = 0; i < kl.numel(); ++i) r.top_kl.push_back(kl[i].item<double>());
      r.norm_ratio = perturbation::mean_ratio(top_norm, baseline_norm);
      write_component(part, config, r);
    }
    results.push_back(r);
    progress.advance(1);
  }
  progress.finish();

  std::vector<double> ratios, norm_ratios;
  for (const auto& r : results) {
    ratios.push_back(r.ratio);
    norm_ratios.push_back(r.norm_ratio);
  }
  const double gm_kl = perturbation::geometric_mean(ratios);
  const double gm_norm = perturbation::geometric_mean(norm_ratios);
  const int64_t K = static_cast<int64_t>(results.size()), k = o.top_k;
  io::File f = io::File::create(o.out);
  io::write_header(f, {"npeff.perturbation", 1}, nlohmann::json::parse(config));
  std::vector<int64_t> comp, sign, top_ids(static_cast<size_t>(K * k), -1);
  std::vector<double> kl_top, kl_base, top_kl(static_cast<size_t>(K * k), 0.0);
  for (int64_t i = 0; i < K; ++i) {
    const auto& r = results[static_cast<size_t>(i)];
    comp.push_back(r.component);
    sign.push_back(r.sign);
    kl_top.insert(kl_top.end(), {r.kl_top[0], r.kl_top[1]});
    kl_base.insert(kl_base.end(), {r.kl_baseline[0], r.kl_baseline[1]});
    for (size_t j = 0; j < r.top_ids.size(); ++j) {
      top_ids[static_cast<size_t>(i * k) + j] = r.top_ids[j];
      top_kl[static_cast<size_t>(i * k) + j] = r.top_kl[j];
    }
  }
  f.root().create_dataset("components", io::DType::kInt64, {K}).write(comp.data());
  f.root().create_dataset("kl_ratio", io::DType::kFloat64, {K}).write(ratios.data());
  f.root().create_dataset("norm_ratio", io::DType::kFloat64, {K}).write(norm_ratios.data());
  f.root().create_dataset("sign", io::DType::kInt64, {K}).write(sign.data());
  f.root().create_dataset("kl_top", io::DType::kFloat64, {K, 2}).write(kl_top.data());
  f.root().create_dataset("kl_baseline", io::DType::kFloat64, {K, 2}).write(kl_base.data());
  f.root().create_dataset("top_example_ids", io::DType::kInt64, {K, k}).write(top_ids.data());
  f.root().create_dataset("top_kl", io::DType::kFloat64, {K, k}).write(top_kl.data());
  std::vector<int64_t> base_ids;
  for (const auto& e : baseline) base_ids.push_back(e.id);
  f.root()
      .create_dataset("baseline_example_ids", io::DType::kInt64,
                      {static_cast<int64_t>(base_ids.size())})
      .write(base_ids.data());
  f.root().set_attr("geometric_mean_kl_ratio", gm_kl);
  f.root().set_attr("geometric_mean_norm_ratio", gm_norm);
  f.commit();
  fs::remove_all(parts);

  nlohmann::json per = nlohmann::json::array();
  for (const auto& r : results)
    per.push_back({{"component", r.component},
                   {"kl_ratio", r.ratio},
                   {"sign", r.sign},
                   {"norm_ratio", r.norm_ratio},
                   {"mean_kl_top", r.kl_top[r.sign > 0 ? 0 : 1]},
                   {"mean_kl_baseline", r.kl_baseline[r.sign > 0 ? 0 : 1]}});
  const nlohmann::json summary = {{"command", "perturb"},
                                  {"output", o.out},
                                  {"components", per},
                                  {"geometric_mean_kl_ratio", gm_kl},
                                  {"geometric_mean_norm_ratio", gm_norm},
                                  {"seconds", progress.elapsed_seconds()}};
  if (!o.json) {
    std::cout << "component  KL ratio  sign  PEF-norm ratio\n";
    for (const auto& r : results)
      std::cout << r.component << "  " << r.ratio << "  " << (r.sign > 0 ? "+" : "-") << "  "
                << r.norm_ratio << "\n";
    std::cout << "geometric means: KL ratio " << gm_kl << ", PEF-norm ratio " << gm_norm << "\n";
  }
  return report_success(o.out, summary, o.json);
}

}  // namespace

void add_perturb_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<PerturbOptions>();
  CLI::App* sub = app.add_subcommand(
      "perturb",
      "Perturb the model along each recovered component direction (theta +- magnitude u/|u|)\n"
      "and compare KL(p_theta || p_theta+delta) on the component's top examples (by coefficient)\n"
      "with a random baseline: KL ratio (the better sign) and PEF-norm ratio per component,\n"
      "geometric means over components (paper Section 3.2, Table 2). The model and task come\n"
      "from the PEF file's provenance. Resumable per component (OUT.partial.d/).\n"
      "Examples:\n"
      "  npeff perturb --recovered r.h5 --decomposition d.h5 --pefs p.h5 -o perturb.h5\n"
      "  npeff perturb -r r.h5 -D d.h5 -p p.h5 --magnitude 10 --baseline 200 -o x.h5 --json");
  sub->add_option("--recovered,-r", o->recovered, "npeff.recovered file")->required();
  sub->add_option("--decomposition,-D", o->decomposition, "npeff.decomposition file")->required();
  sub->add_option("--pefs,-p", o->pefs, "npeff.pefs file the decomposition was made from")
      ->required();
  sub->add_option("--model,-m", o->model, "Model (default: the one the PEFs were computed with)");
  sub->add_option("--tokenizer,-t", o->tokenizer, "Tokenizer (default: as for the PEFs)");
  sub->add_option("--magnitude", o->magnitude, "L2 norm of the perturbation")
      ->capture_default_str();
  sub->add_option("--top-k", o->top_k, "Top examples per component")->capture_default_str();
  sub->add_option("--baseline", o->baseline, "Random baseline examples")->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the baseline draw")->capture_default_str();
  sub->add_option("--batch-size", o->batch_size, "Examples per forward pass")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_perturb(*o, global); }; });
}

}  // namespace npeff::cli
