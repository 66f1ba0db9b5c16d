// npeff synth-task: a generated text-classification task with planted factors
// (docs/ground-truth.md): OUT/data.tsv (sentence, label, factors) and OUT/task.json, usable by
// predict, compute-pefs and the rest like any task.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/io/text_output.h"
#include "npeff/synth/synthetic_task.h"

namespace npeff::cli {
namespace {

namespace fs = std::filesystem;

struct SynthTaskOptions {
  synth::SyntheticTaskOptions
      task;                        ///< examples 2000, classes 2, seed 0, 1-3 triggers, 25% negated
  std::string label_prefix = " ";  ///< "" for character-level tokenizers (distinct first tokens)
  std::string out;                 ///< folder
  bool json = false;
};

// A character-level tokenizer.json (BPE without merges) covering every character of the data,
// the template and the labels: what `npeff train` needs for a model of this task.
std::string char_tokenizer_json(const synth::SyntheticTask& t) {
  std::set<std::string> chars;
  const auto add = [&](const std::string& s) {
    for (const char c : s) chars.insert(std::string(1, c));
  };
  for (const auto& e : t.examples) add(e.text);
  for (const auto& c : t.class_names) add(c);
  add(t.prompt_template);
  add(" ");
  nlohmann::json vocab = nlohmann::json::object();
  vocab["<unk>"] = 0;
  for (const auto& c : chars)
    if (c != "{" && c != "}") vocab[c] = static_cast<int64_t>(vocab.size());
  return nlohmann::json{{"model",
                         {{"type", "BPE"},
                          {"unk_token", "<unk>"},
                          {"fuse_unk", true},
                          {"merges", nlohmann::json::array()},
                          {"vocab", vocab}}}}
             .dump() +
         "\n";
}

int run_synth_task(const SynthTaskOptions& o) {
  const synth::SyntheticTask t = synth::generate_synthetic_task(o.task);
  const fs::path out(o.out);
  NPEFF_CHECK(!fs::exists(out) || (fs::is_directory(out) && fs::exists(out / "task.json")), o.out,
              " exists and is not an earlier synth-task folder; choose another --out");
  const std::string tmp = io::begin_folder(o.out);
  std::map<std::string, std::int64_t> factor_count, label_count;
  double mean_factors = 0;
  {
    std::ostringstream f;
    f << "sentence\tlabel\tfactors\n";
    for (const auto& e : t.examples) {
      std::string factors;
      for (const std::int64_t k : e.factors) {
        const std::string& name = t.factor_names[static_cast<size_t>(k)];
        factors += (factors.empty() ? "" : "|") + name;
        ++factor_count[name];
      }
      mean_factors += static_cast<double>(e.factors.size());
      ++label_count[t.class_names[static_cast<size_t>(e.label)]];
      f << e.text << "\t" << e.label << "\t" << factors << "\n";
    }
    io::write_file(tmp + "/data.tsv", f.str());
  }
  nlohmann::json label_names = nlohmann::json::object();
  for (size_t c = 0; c < t.class_names.size(); ++c)
    label_names[std::to_string(c)] = t.class_names[c];
  const nlohmann::json task = {
      {"name", "synthetic-" + std::to_string(t.class_names.size()) + "class"},
      {"kind", "label-tokens"},
      {"template", t.prompt_template},
      {"labels", t.class_names},
      {"label_prefix", o.label_prefix},
      {"data",
       {{"format", "tsv"},
        {"path", "data.tsv"},  // beside task.json: the folder can be moved
        {"fields", {{"sentence", "sentence"}}},
        {"label_field", "label"},
        {"label_names", label_names}}},
      {"synthetic",
       {{"examples", o.task.examples},
        {"classes", o.task.classes},
        {"seed", o.task.seed},
        {"min_triggers", o.task.min_triggers},
        {"max_triggers", o.task.max_triggers},
        {"negation_rate", o.task.negation_rate},
        {"triggers", t.triggers},
        {"factors", t.factor_names}}}};
  io::write_file(tmp + "/task.json", task.dump(2) + "\n");
  io::write_file(tmp + "/tokenizer.json", char_tokenizer_json(t));
  io::commit_folder(tmp, o.out);
  mean_factors /= static_cast<double>(t.examples.size());
  return report_success((out / "task.json").string(),
                        {{"command", "synth-task"},
                         {"output", o.out},
                         {"task", (out / "task.json").string()},
                         {"examples", t.examples.size()},
                         {"labels", label_count},
                         {"factors", factor_count},
                         {"mean_factors_per_example", mean_factors}},
                        o.json);
}

}  // namespace

void add_synth_task_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<SynthTaskOptions>();
  CLI::App* sub = app.add_subcommand(
      "synth-task",
      "A generated text-classification task with planted factors (docs/ground-truth.md):\n"
      "class trigger words, some negated ('not great'); un-negated mentions vote for their\n"
      "class, negated ones against it; the label is the class with most votes. Writes\n"
      "OUT/data.tsv (sentence, label, factors), OUT/task.json for predict/compute-pefs and\n"
      "OUT/tokenizer.json (character level, for npeff train; use --label-prefix '' with it).\n"
      "Examples:\n"
      "  npeff synth-task --examples 2000 --seed 1 -o synth-sentiment\n"
      "  npeff synth-task --classes 3 --max-triggers 4 --negation-rate 0.3 -o synth-topics --json");
  sub->add_option("--examples", o->task.examples, "Examples")->capture_default_str();
  sub->add_option("--classes", o->task.classes, "Classes: 2 (sentiment) to 4 (topics)")
      ->capture_default_str();
  sub->add_option("--seed", o->task.seed, "Seed")->capture_default_str();
  sub->add_option("--min-triggers", o->task.min_triggers, "Fewest trigger mentions per example")
      ->capture_default_str();
  sub->add_option("--max-triggers", o->task.max_triggers, "Most trigger mentions per example")
      ->capture_default_str();
  sub->add_option("--negation-rate", o->task.negation_rate, "Chance a mention is negated")
      ->capture_default_str();
  sub->add_option("--label-prefix", o->label_prefix,
                  "Put before labels when tokenizing them (\"\" for the character tokenizer)")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output folder")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &runner] { runner = [o] { return run_synth_task(*o); }; });
}

}  // namespace npeff::cli
