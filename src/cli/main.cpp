// npeff: one binary, one subcommand per pipeline stage. Exit codes: 0 success, 2 bad input
// (npeff::Error, command-line errors), 3 diverged (npeff::DivergedError), 1 internal failure.
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/aliases.h"
#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/core/json_config.h"
#include "npeff/core/log.h"
#include "npeff/core/paths.h"
#include "npeff/core/runtime.h"
#include "npeff/core/version.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"

namespace {

using npeff::kExitBadInput;
using npeff::kExitDiverged;
using npeff::kExitInternal;

// Adapts npeff's JSON config (npeff/core/json_config.h) to CLI11's config mechanism, so options
// from the file are applied exactly like flags, and flags given on the command line win.
class JsonConfig : public CLI::Config {
 public:
  explicit JsonConfig(const CLI::App* app) : app_(app) {}
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return "{}"; }
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::stringstream text;
    text << input.rdbuf();
    std::vector<CLI::ConfigItem> items;
    // Relative paths in the file resolve against its folder. CLI11 reads the --config files
    // last to first, one from_config call each: count the calls to know which file this is.
    const auto files = app_->get_config_ptr()->as<std::vector<std::string>>();
    const std::string file = files.empty() ? "" : files[files.size() - 1 - read_++ % files.size()];
    const std::string folder = file.empty() ? "" : npeff::folder_of(file);
    for (auto& entry :
         npeff::parse_json_config(text.str(), file.empty() ? "config file" : file, folder)) {
      CLI::ConfigItem item;
      item.parents = entry.parents;
      item.name = entry.name;
      item.inputs = entry.values;
      // A flat key that is not a global option belongs to the subcommand being run.
      if (item.parents.empty() && app_->get_option_no_throw("--" + item.name) == nullptr) {
        for (const CLI::App* sub : app_->get_subcommands()) item.parents = {sub->get_name()};
      }
      if (!item.parents.empty()) {  // deprecated keys, as on the command line
        const std::string renamed =
            npeff::cli::rewrite_deprecated_config_key(item.parents.front(), item.name);
        if (!renamed.empty()) {
          if (item.name == "store-dtype")
            for (std::string& v : item.inputs)
              v = v == "float32" ? "fp32" : v == "float16" ? "fp16" : v;
          item.name = renamed;
        }
      }
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  const CLI::App* app_;
  mutable std::size_t read_ = 0;  // files read so far
};

std::string joined_command_line(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    if (i) out += ' ';
    const std::string arg = argv[i];
    const bool plain = arg.find_first_of(" \t\"'$\\") == std::string::npos && !arg.empty();
    out += plain ? arg : "'" + arg + "'";
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  npeff::tune_openmp_wait_policy(argv);
  npeff::io::silence_hdf5_errors();
  CLI::App app{
      "npeff: Non-Negative Per-Example Fisher Factorization (NPEFF) toolkit.\n"
      "Finds the heuristics a model uses by decomposing per-example Fisher matrices.\n\n"
      "Examples:\n"
      "  npeff synth-vectors --rows 4 --input-dim 100000 --seed 1 --out x.h5\n"
      "  npeff project --input x.h5 --proj-dim 4096 --proj-seed 7 --out x.proj.h5\n"
      "  npeff inspect x.proj.h5 --json\n"
      "  npeff synth-pefs --examples 2000 --proj-dim 1024 --components 32 --out p.h5\n"
      "  npeff decompose --pefs p.h5 --components 32 --out d.h5 --json\n"
      "  mpirun -np 4 npeff decompose --pefs shard*.h5 --components 512 --out d.h5\n"
      "Exit codes: 0 success, 2 bad input or usage, 3 diverged (decompose, sae, train), 1 "
      "internal\n"
      "error, 128 + N killed by signal N (rerun to resume).",
      "npeff"};
  app.set_version_flag("--version", npeff::build_info());
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  app.require_subcommand(1, 1);
  app.fallthrough();
  // A misspelt key in a --config file is an error, not silently ignored (set before the
  // subcommands are added so they inherit it).
  app.allow_config_extras(CLI::config_extras_mode::error);

  npeff::cli::GlobalOptions global;
  app.add_option("--log-level", global.log_level, "Log verbosity: trace|debug|info|warn|error|off")
      ->capture_default_str();
  app.add_option(
         "--threads", global.threads,
         "CPU threads (0 = the CPUs this process may run on: affinity, SLURM_CPUS_PER_TASK)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--device", global.device, "Compute device: cpu|cuda|cuda:N")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (text == "cpu" || text == "cuda") return "";
            if (text.rfind("cuda:", 0) == 0 && text.size() > 5 &&
                text.find_first_not_of("0123456789", 5) == std::string::npos)
              return "";
            return "'" + text + "' is not a device: give cpu, cuda or cuda:N";
          },
          "cpu|cuda|cuda:N"));
  app.set_config("--config", "",
                 "Read options from a JSON file (flags given here win); relative paths in it "
                 "resolve against the file's folder");
  app.config_formatter(std::make_shared<JsonConfig>(&app));

  npeff::cli::Runner runner;
  npeff::cli::add_inspect_command(app, global, runner);
  npeff::cli::add_project_command(app, global, runner);
  npeff::cli::add_synth_vectors_command(app, global, runner);
  npeff::cli::add_synth_pefs_command(app, global, runner);
  npeff::cli::add_decompose_command(app, global, runner);
  npeff::cli::add_fit_coeffs_command(app, global, runner);
  npeff::cli::add_tokenize_command(app, global, runner);
  npeff::cli::add_generate_command(app, global, runner);
  npeff::cli::add_model_info_command(app, global, runner);
  npeff::cli::add_predict_command(app, global, runner);
  npeff::cli::add_compute_pefs_command(app, global, runner);
  npeff::cli::add_merge_pefs_command(app, global, runner);
  npeff::cli::add_recover_command(app, global, runner);
  npeff::cli::add_perturb_command(app, global, runner);
  npeff::cli::add_cluster_command(app, global, runner);
  npeff::cli::add_sae_command(app, global, runner);
  npeff::cli::add_tune_report_command(app, global, runner);
  npeff::cli::add_compare_command(app, global, runner);
  npeff::cli::add_synth_task_command(app, global, runner);
  npeff::cli::add_train_command(app, global, runner);
  npeff::cli::add_score_factors_command(app, global, runner);

  // Deprecated spellings are rewritten before parsing (cli/aliases.h).
  std::vector<std::string> args = npeff::cli::rewrite_deprecated_flags(argc, argv);
  std::vector<char*> arg_pointers;
  for (std::string& a : args) arg_pointers.push_back(a.data());
  try {
    app.parse(static_cast<int>(arg_pointers.size()), arg_pointers.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "npeff: error: " << e.what() << "\nRun 'npeff --help' for usage.\n";
    return kExitBadInput;
  } catch (const npeff::Error& e) {  // e.g. a malformed --config file
    std::cerr << "npeff: error: " << e.what() << "\n";
    return kExitBadInput;
  }

  try {
    npeff::log::configure(global.log_level);
    npeff::set_num_threads(global.threads);
    npeff::log::debug("threads: ", npeff::num_threads(),
                      global.threads == 0 ? " (the CPUs this process may run on)" : "");
    // Any CUDA request on a CPU-only build is refused here, whatever the subcommand.
    npeff::require_device(npeff::parse_device(global.device));
    npeff::io::set_command_line(joined_command_line(argc, argv));
    NPEFF_ASSERT(runner, "no subcommand runner was registered");
    return runner();
  } catch (const npeff::DivergedError& e) {
    std::cerr << "npeff: diverged: " << e.what() << "\n";
    return kExitDiverged;
  } catch (const npeff::Error& e) {
    std::cerr << "npeff: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const npeff::InternalError& e) {
    std::cerr << "npeff: " << e.what() << "\n";
    return kExitInternal;
  } catch (const c10::Error& e) {
    std::cerr << "npeff: internal error from LibTorch: " << e.what_without_backtrace() << "\n";
    return kExitInternal;
  } catch (const std::exception& e) {
    std::cerr << "npeff: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}
