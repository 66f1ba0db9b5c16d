// npeff tune-report: what each component means (paper Section 3.1, Table 1, Figures 1, 4-7):
// top examples with coefficients, labels and predictions, tuning flags and fractions, the
// ICL-style classifier (Section 3.3), as report.json and a self-contained index.html.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "cli/subcommands.h"
#include "npeff/analysis/examples.h"
#include "npeff/analysis/report.h"
#include "npeff/core/error.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/text_output.h"

namespace npeff::cli {
namespace {

namespace fs = std::filesystem;

struct TuneReportOptions {
  std::string decomposition;      ///< any npeff.decomposition (decompose, cluster, sae)
  std::vector<std::string> pefs;  ///< compute-pefs (or predict) files with the examples' facts
  std::string name;               ///< default: from the method (NPEFF, GC, SAE)
  std::int64_t top_k = 16;        ///< Section 3.1
  double icl_fraction = 0.75;     ///< Section 3.3
  std::int64_t prompt_chars = 600;
  std::string tokenizer;  ///< decodes vocabulary tasks' token ids (default: from provenance)
  std::string out;        ///< folder
  bool json = false;
};

std::string default_name(const std::string& method) {
  if (method == "kmeans") return "GC";
  if (method == "sae") return "SAE";
  return "NPEFF";
}

int run_tune_report(const TuneReportOptions& o) {
  NPEFF_CHECK(o.top_k >= 1, "--top-examples must be >= 1, got ", o.top_k);
  NPEFF_CHECK(o.icl_fraction > 0 && o.icl_fraction <= 1, "--icl-fraction must lie in (0, 1], got ",
              o.icl_fraction);
  PathCheck inputs;
  inputs.file("--decomposition", o.decomposition);
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  const fs::path out(o.out);
  NPEFF_CHECK(!fs::exists(out) ||
                  (fs::is_directory(out) && (fs::is_empty(out) || fs::exists(out / "report.json"))),
              o.out, " exists and is not an earlier tune-report folder; choose another --out");
  const decomposition::DecompositionData dec = decomposition::read_decomposition(o.decomposition);
  const analysis::ExampleTable all = analysis::read_example_table(o.pefs);
  const at::Tensor ids_t = dec.example_ids.contiguous();
  const std::vector<std::int64_t> ids(ids_t.data_ptr<std::int64_t>(),
                                      ids_t.data_ptr<std::int64_t>() + ids_t.numel());
  analysis::TuneReportInputs in;
  in.name = o.name.empty() ? default_name(dec.method) : o.name;
  in.method = dec.method;
  in.decomposition = o.decomposition;
  in.example_files = o.pefs;
  in.w = dec.w;
  in.examples = analysis::select_examples(all, ids, o.decomposition);
  analysis::decode_vocabulary(in.examples, o.tokenizer);
  in.loss_steps = dec.loss.steps;
  in.loss_values = dec.loss.values;
  in.top_k = o.top_k;
  in.icl_fraction = o.icl_fraction;
  in.prompt_chars = o.prompt_chars;
  const nlohmann::json report = analysis::build_tune_report(in);

  // Written in OUT.partial.d and renamed: OUT is either absent, the old report or the new one
  // (the old one is removed just before the rename).
  const std::string tmp = io::begin_folder(o.out);
  io::write_file(tmp + "/report.json", report.dump(1) + "\n");
  io::write_file(tmp + "/index.html", analysis::render_report_html(report));
  io::commit_folder(tmp, o.out);

  nlohmann::json summary = {{"command", "tune-report"},
                            {"output", o.out},
                            {"html", (out / "index.html").string()},
                            {"name", in.name},
                            {"summary", report["summary"]}};
  if (report.contains("icl")) summary["icl"] = report["icl"];
  return report_success((out / "index.html").string(), summary, o.json);
}

}  // namespace

void add_tune_report_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<TuneReportOptions>();
  CLI::App* sub = app.add_subcommand(
      "tune-report",
      "What each component means (paper Section 3.1, Table 1): its top --top-examples examples by\n"
      "coefficient (ties: the lower row) with labels and predictions; prediction-tuned (all top\n"
      "examples share the prediction), label-tuned and LnP (label- but not prediction-tuned)\n"
      "flags and fractions (components with fewer than k non-zero examples are excluded and\n"
      "counted); the ICL-style classifier of Section 3.3. Takes decompose, cluster and sae\n"
      "outputs. Writes OUT/report.json and OUT/index.html (self-contained: summary, loss curve,\n"
      "tuning fractions, one searchable, sortable card per component).\n"
      "Examples:\n"
      "  npeff tune-report -D sst2.npeff.h5 -p sst2.pefs.h5 -o sst2-report\n"
      "  npeff tune-report -D sst2.gc.h5 -p sst2.grad.h5 --name GC --top-examples 16 -o gc-report "
      "--json");
  sub->add_option("--decomposition,-D", o->decomposition, "npeff.decomposition file")->required();
  sub->add_option("--pefs,-p", o->pefs,
                  "compute-pefs (or predict) files holding the examples' labels, predictions "
                  "and prompts")
      ->required();
  sub->add_option("--name", o->name, "Name in titles and tables (default from the method)");
  sub->add_option("--top-examples", o->top_k, "Top examples per component")->capture_default_str();
  sub->add_option("--icl-fraction", o->icl_fraction,
                  "Share of top examples with a label for the classifier's tuning")
      ->capture_default_str();
  sub->add_option("--prompt-chars", o->prompt_chars, "Cut prompts longer than this (0: never)")
      ->capture_default_str();
  sub->add_option("--tokenizer,-t", o->tokenizer,
                  "Vocabulary tasks: tokenizer that decodes predicted token ids (default: the "
                  "one recorded in the first --pefs file's provenance, or its model's own)");
  sub->add_option("--out,-o", o->out, "Output folder")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &runner] { runner = [o] { return run_tune_report(*o); }; });
}

}  // namespace npeff::cli
