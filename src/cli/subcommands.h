// Registration of the npeff subcommands (one .cpp per subcommand in src/cli/).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <iostream>
#include <string>

#include "npeff/core/error.h"
#include "npeff/core/paths.h"
#include "npeff/task/task.h"

namespace npeff::cli {

/// Options every subcommand sees (set before the subcommand runs).
struct GlobalOptions {
  std::string log_level = "info";  ///< trace|debug|info|warn|error|off
  int threads = 0;                 ///< CPU threads for LibTorch and npeff ops; 0 = all cores
  std::string device = "cpu";      ///< cpu|cuda
};

/// What the selected subcommand will do once parsing has succeeded. Returns the exit code.
using Runner = std::function<int()>;

/// How every subcommand ends on success (chaining in scripts): the JSON summary on stdout with
/// --json, otherwise the path it wrote. Returns exit code 0.
inline int report_success(const std::string& output, const nlohmann::json& summary, bool json) {
  if (json)
    std::cout << summary.dump(2) << "\n";
  else
    std::cout << output << "\n";
  return 0;
}

/// --model/-m (required) and --tokenizer/-t, shared by the subcommands that load a model.
inline void add_model_options(CLI::App* sub, std::string& model, std::string& tokenizer) {
  sub->add_option("--model,-m", model, "HF model directory, GGUF file or llama2.c .bin")
      ->required();
  sub->add_option("--tokenizer,-t", tokenizer, "Tokenizer (default: the model's own)");
}

/// Adds the problems of --model and (when given) --tokenizer to `check`.
inline void check_model_paths(PathCheck& check, const std::string& model,
                              const std::string& tokenizer) {
  check.file_or_folder("--model", model);
  if (!tokenizer.empty()) check.file_or_folder("--tokenizer", tokenizer);
}

/// Which task and which of its examples (predict, compute-pefs).
struct TaskSelection {
  std::string task;                ///< task config JSON (required)
  std::string data;                ///< overrides the task's data.path
  std::string split;               ///< overrides the task's data.split (json-pairs)
  std::int64_t start = 0;          ///< first example of the data
  std::int64_t max_examples = -1;  ///< -1: all
  /// The task config with --data/--split applied.
  task::Task load() const {
    task::Task t = task::Task::load(task);
    if (!data.empty()) t.data.path = data;
    if (!split.empty()) t.data.split = split;
    return t;
  }
  /// Adds the problems of --task and of the data file it names (or --data) to `check`.
  void check_paths(PathCheck& check) const {
    if (!data.empty()) check.file("--data", data);
    if (!check.file("--task", task)) return;
    try {
      const task::Task t = load();
      if (data.empty()) check.file("data file of --task " + task, t.data.path);
    } catch (const Error& e) {  // a malformed config
      check.add(e.what());
    }
  }
};

inline void add_task_options(CLI::App* sub, TaskSelection& t) {
  sub->add_option("--task", t.task, "Task config JSON (configs/tasks/*.json)")->required();
  sub->add_option("--data", t.data, "Data file (overrides the task's data.path)");
  sub->add_option("--split", t.split, "Split of a json-pairs data file (overrides data.split)");
  sub->add_option("--start", t.start, "First example of the data")->capture_default_str();
  sub->add_option("--max-examples", t.max_examples, "Number of examples (-1: all)")
      ->capture_default_str();
}

void add_inspect_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_project_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_synth_vectors_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_synth_pefs_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_decompose_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_fit_coeffs_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_tokenize_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_generate_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_model_info_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_predict_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_compute_pefs_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_merge_pefs_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_recover_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_perturb_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_cluster_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_sae_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_tune_report_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_compare_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_synth_task_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_train_command(CLI::App& app, const GlobalOptions& global, Runner& runner);
void add_score_factors_command(CLI::App& app, const GlobalOptions& global, Runner& runner);

}  // namespace npeff::cli
