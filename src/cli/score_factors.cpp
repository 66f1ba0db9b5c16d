// npeff score-factors: how well a decomposition's components recover the planted factors of a
// `npeff synth-task` data set (docs/ground-truth.md): per factor the best top-k precision and
// the best coefficient AUC of any component; the share of factors recovered.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/subcommands.h"
#include "npeff/analysis/factors.h"
#include "npeff/core/error.h"
#include "npeff/decomposition/decomposition_file.h"

namespace npeff::cli {
namespace {

struct ScoreFactorsOptions {
  std::string decomposition;
  std::string task_dir;  ///< synth-task output (task.json, data.tsv)
  std::int64_t top_k = 16;
  double threshold = 0.75;  ///< a factor counts as recovered at top-k precision >= this
  std::string name;
  bool json = false;
};

int run_score_factors(const ScoreFactorsOptions& o) {
  PathCheck inputs;
  inputs.file("--decomposition", o.decomposition);
  inputs.folder("--task-dir", o.task_dir);
  inputs.throw_if_any();
  std::ifstream tf(o.task_dir + "/task.json");
  NPEFF_CHECK(tf.good(), o.task_dir, "/task.json: cannot open (not a synth-task folder?)");
  const nlohmann::json task = nlohmann::json::parse(tf, nullptr, false);
  NPEFF_CHECK(!task.is_discarded() && task.contains("synthetic"), o.task_dir,
              "/task.json is not a synth-task config (no \"synthetic\" section)");
  const auto names = task["synthetic"]["factors"].get<std::vector<std::string>>();
  std::map<std::string, std::int64_t> index;
  for (size_t f = 0; f < names.size(); ++f) index[names[f]] = static_cast<std::int64_t>(f);
  // data.tsv rows in order; example id = row index.
  std::ifstream df(o.task_dir + "/data.tsv");
  NPEFF_CHECK(df.good(), o.task_dir, "/data.tsv: cannot open");
  std::string line;
  std::getline(df, line);
  NPEFF_CHECK(line == "sentence\tlabel\tfactors", o.task_dir,
              "/data.tsv: header is not 'sentence<TAB>label<TAB>factors'");
  std::vector<std::vector<std::int64_t>> rows;
  while (std::getline(df, line)) {
    const std::string cell = line.substr(line.rfind('\t') + 1);
    std::vector<std::int64_t> fs;
    std::stringstream ss(cell);
    std::string item;
    while (std::getline(ss, item, '|')) {
      if (item.empty()) continue;
      NPEFF_CHECK(index.count(item), o.task_dir, "/data.tsv: unknown factor '", item, "'");
      fs.push_back(index[item]);
    }
    rows.push_back(fs);
  }
  const decomposition::DecompositionData dec = decomposition::read_decomposition(o.decomposition);
  const std::int64_t m = dec.w.size(0), F = static_cast<std::int64_t>(names.size());
  at::Tensor presence = at::zeros({m, F}, at::kBool);
  for (std::int64_t i = 0; i < m; ++i) {
    const std::int64_t id = dec.example_ids[i].item<std::int64_t>();
    NPEFF_CHECK(id >= 0 && id < static_cast<std::int64_t>(rows.size()), o.decomposition,
                " has example id ", id, " but ", o.task_dir, "/data.tsv has ", rows.size(),
                " examples");
    for (const std::int64_t f : rows[static_cast<size_t>(id)]) presence[i][f] = true;
  }
  const auto scores = analysis::score_factors(dec.w, presence, o.top_k);
  nlohmann::json per = nlohmann::json::array();
  std::int64_t recovered = 0;
  double mean_auc = 0, mean_precision = 0;
  for (std::int64_t f = 0; f < F; ++f) {
    const auto& s = scores[static_cast<size_t>(f)];
    recovered += s.top_precision >= o.threshold;
    mean_auc += s.auc / static_cast<double>(F);
    mean_precision += s.top_precision / static_cast<double>(F);
    per.push_back({{"factor", names[static_cast<size_t>(f)]},
                   {"present", s.present},
                   {"top_precision", s.top_precision},
                   {"precision_component", s.precision_component},
                   {"auc", s.auc},
                   {"auc_component", s.auc_component}});
  }
  const nlohmann::json j = {{"command", "score-factors"},
                            {"name", o.name.empty() ? dec.method : o.name},
                            {"decomposition", o.decomposition},
                            {"top_k", o.top_k},
                            {"threshold", o.threshold},
                            {"factors", F},
                            {"recovered", recovered},
                            {"recovered_fraction", F ? double(recovered) / double(F) : 0.0},
                            {"mean_top_precision", mean_precision},
                            {"mean_auc", mean_auc},
                            {"per_factor", per}};
  if (o.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "| factor | examples | best top-" << o.top_k
              << " precision | AUC |\n|---|---|---|---|\n";
    for (const auto& p : per)
      std::cout << "| " << p["factor"].get<std::string>() << " | " << p["present"] << " | "
                << std::fixed << std::setprecision(2) << p["top_precision"].get<double>() << " | "
                << p["auc"].get<double>() << " |\n";
    std::cout << "recovered " << recovered << " of " << F << " factors (top-" << o.top_k
              << " precision >= " << o.threshold << ")\n";
  }
  return 0;
}

}  // namespace

void add_score_factors_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<ScoreFactorsOptions>();
  CLI::App* sub = app.add_subcommand(
      "score-factors",
      "Score a decomposition (decompose, cluster or sae output) against the planted factors of\n"
      "a synth-task data set: per factor the best top-k precision and coefficient AUC of any\n"
      "component, and the share of factors recovered (precision >= --threshold).\n"
      "Examples:\n"
      "  npeff score-factors -D synth.npeff.h5 --task-dir synth\n"
      "  npeff score-factors -D synth.gc.h5 --task-dir synth --top-examples 16 --threshold 0.75 "
      "--json");
  sub->add_option("--decomposition,-D", o->decomposition, "npeff.decomposition file")->required();
  sub->add_option("--task-dir", o->task_dir, "synth-task output folder")->required();
  sub->add_option("--top-examples", o->top_k, "Top examples per component")->capture_default_str();
  sub->add_option("--threshold", o->threshold, "Top-k precision that counts as recovered")
      ->capture_default_str();
  sub->add_option("--name", o->name, "Name in the JSON summary");
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &runner] { runner = [o] { return run_score_factors(*o); }; });
}

}  // namespace npeff::cli
