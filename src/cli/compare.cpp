// npeff compare: analyses across decompositions (paper Sections 3.1, 3.3, 4, Appendix H):
// decomposition similarity (Figure 2), component splits (Tables 12-13), a Table-1/Table-3 style
// table of tunings and ICL-classifier accuracy for several methods, and the eigenvalue decay of
// PEFs (Figure 3).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/subcommands.h"
#include "npeff/analysis/compare.h"
#include "npeff/analysis/examples.h"
#include "npeff/analysis/report.h"
#include "npeff/analysis/tuning.h"
#include "npeff/core/error.h"
#include "npeff/decomposition/decomposition_file.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/text_output.h"

namespace npeff::cli {
namespace {

struct CompareOptions {
  std::vector<std::string> decompositions;  ///< similarity: two files; tunings: NAME=PATH
  std::string coarse, fine;                 ///< splits
  std::vector<std::string> pefs;            ///< files with the examples' facts / the PEFs
  std::int64_t top_k = 16;
  double icl_fraction = 0.75;
  std::string out;   ///< tunings: markdown table; eigen-decay: JSON data
  std::string plot;  ///< eigen-decay: SVG
  bool json = false;
};

std::vector<std::int64_t> to_vector(const at::Tensor& ids) {
  const at::Tensor c = ids.to(at::kLong).contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

// A decomposition with its rows' facts.
struct Loaded {
  decomposition::DecompositionData dec;
  analysis::ExampleTable examples;
  std::vector<analysis::ComponentTuning> tunings;
};
Loaded load(const std::string& path, const analysis::ExampleTable& all, std::int64_t top_k) {
  Loaded l;
  l.dec = decomposition::read_decomposition(path);
  l.examples = analysis::select_examples(all, to_vector(l.dec.example_ids), path);
  l.tunings =
      analysis::component_tunings(l.dec.w, l.examples.labels, l.examples.predictions, top_k);
  return l;
}

int run_similarity(const CompareOptions& o) {
  NPEFF_CHECK(o.decompositions.size() == 2, "similarity takes exactly two decompositions, got ",
              o.decompositions.size());
  PathCheck inputs;
  inputs.files("decomposition", o.decompositions);
  inputs.throw_if_any();
  const auto a = decomposition::read_decomposition(o.decompositions[0]);
  const auto b = decomposition::read_decomposition(o.decompositions[1]);
  const auto [wa, wb] = analysis::align_rows(a.w, a.example_ids, b.w, b.example_ids);
  const double s = analysis::decomposition_similarity(wa, wb);
  const nlohmann::json j = {{"command", "compare similarity"},
                            {"a", o.decompositions[0]},
                            {"b", o.decompositions[1]},
                            {"common_examples", wa.size(0)},
                            {"similarity", s}};
  if (o.json)
    std::cout << j.dump(2) << "\n";
  else
    std::cout << std::setprecision(6) << s << "\n";
  return 0;
}

int run_splits(const CompareOptions& o) {
  PathCheck inputs;
  inputs.file("--coarse", o.coarse);
  inputs.file("--fine", o.fine);
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  const analysis::ExampleTable all = analysis::read_example_table(o.pefs);
  const Loaded c = load(o.coarse, all, o.top_k), f = load(o.fine, all, o.top_k);
  const auto [wc, wf] =
      analysis::align_rows(c.dec.w, c.dec.example_ids, f.dec.w, f.dec.example_ids);
  NPEFF_CHECK(wc.size(0) == c.dec.w.size(0) && wf.size(0) == f.dec.w.size(0), o.coarse, " and ",
              o.fine, " hold different examples; splits need the same example set");
  const analysis::ComponentSplits s = analysis::component_splits(wc, wf, c.tunings, f.tunings);
  std::int64_t coarse_pred = 0;
  for (const auto& t : c.tunings) coarse_pred += t.prediction_tuned;
  const nlohmann::json j = {{"command", "compare splits"},
                            {"coarse", o.coarse},
                            {"fine", o.fine},
                            {"coarse_components", wc.size(1)},
                            {"fine_components", wf.size(1)},
                            {"coarse_matched", s.coarse_matched},
                            {"coarse_prediction_tuned", coarse_pred},
                            {"considered_matches", s.considered},
                            {"preserved", s.preserved},
                            {"preserved_fraction", s.preserved_fraction},
                            {"coarse_of_fine", s.coarse_of_fine},
                            {"similarity", s.similarity}};
  if (o.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << s.coarse_matched << " of " << wc.size(1)
              << " coarse components have a fine split; prediction tunings preserved in "
              << s.preserved << " of " << s.considered << " matches (" << std::setprecision(4)
              << 100 * s.preserved_fraction << "%)\n";
  }
  return 0;
}

std::string percent(double x) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << 100 * x;
  return s.str();
}

int run_tunings(const CompareOptions& o) {
  NPEFF_CHECK(!o.decompositions.empty(), "tunings takes NAME=PATH decompositions");
  PathCheck inputs;
  for (const std::string& spec : o.decompositions) {
    const size_t eq = spec.find('=');
    if (eq != std::string::npos && eq > 0) inputs.file(spec.substr(0, eq), spec.substr(eq + 1));
  }
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  const analysis::ExampleTable all = analysis::read_example_table(o.pefs);
  const bool labels = all.has_labels() && all.label_names.size() >= 2;
  std::ostringstream md;
  md << "| method | components | included | excluded | Pred % | Label % | LnP % |"
     << (labels ? " ICL acc % | ICL agree % |" : "") << "\n"
     << "|---|---|---|---|---|---|---|" << (labels ? "---|---|" : "") << "\n";
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& spec : o.decompositions) {
    const size_t eq = spec.find('=');
    NPEFF_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "'", spec,
                "' is not NAME=PATH (e.g. NPEFF=sst2.npeff.h5)");
    const std::string name = spec.substr(0, eq), path = spec.substr(eq + 1);
    const Loaded l = load(path, all, o.top_k);
    const analysis::TuningSummary s = analysis::summarize_tunings(l.tunings, labels);
    nlohmann::json row = {{"method", name},
                          {"path", path},
                          {"kind", l.dec.method},
                          {"components", s.components},
                          {"included", s.included},
                          {"excluded", s.excluded},
                          {"prediction_fraction", s.prediction_fraction},
                          {"label_fraction", s.label_fraction},
                          {"lnp_fraction", s.lnp_fraction}};
    md << "| " << name << " | " << s.components << " | " << s.included << " | " << s.excluded
       << " | " << percent(s.prediction_fraction) << " | "
       << (labels ? percent(s.label_fraction) : "n/a") << " | "
       << (labels ? percent(s.lnp_fraction) : "n/a") << " |";
    if (labels) {
      const analysis::IclClassifier icl =
          analysis::icl_classifier(l.dec.w, l.tunings, l.examples.labels, l.examples.predictions,
                                   static_cast<std::int64_t>(all.label_names.size()),
                                   o.icl_fraction, l.dec.method == "kmeans");
      row["icl_accuracy"] = icl.accuracy;
      row["icl_agreement"] = icl.agreement;
      row["icl_tuned_components"] = icl.tuned_components;
      md << " " << percent(icl.accuracy) << " | " << percent(icl.agreement) << " |";
    }
    md << "\n";
    rows.push_back(row);
  }
  std::int64_t labelled = 0, correct = 0;
  for (std::int64_t i = 0; i < all.size(); ++i)
    if (all.labels[static_cast<size_t>(i)] >= 0)
      ++labelled,
          correct += all.labels[static_cast<size_t>(i)] == all.predictions[static_cast<size_t>(i)];
  md << "\nTop " << o.top_k << " examples per component; components with fewer non-zero examples "
     << "are excluded. Examples: " << all.size();
  if (labelled)
    md << "; the model's own accuracy on them: " << percent(double(correct) / double(labelled))
       << "%";
  md << ".\n";
  if (!o.out.empty()) io::write_file_atomically(o.out, md.str());
  const nlohmann::json j = {{"command", "compare tunings"},
                            {"top_k", o.top_k},
                            {"examples", all.size()},
                            {"rows", rows},
                            {"markdown", md.str()}};
  if (o.json)
    std::cout << j.dump(2) << "\n";
  else
    std::cout << md.str();
  return 0;
}

int run_eigen_decay(const CompareOptions& o) {
  PathCheck inputs;
  inputs.files("--pefs", o.pefs);
  inputs.throw_if_any();
  const std::vector<io::PefFileInfo> files = io::read_compatible_pef_infos(o.pefs);
  std::int64_t m = 0;
  for (const auto& f : files) m += f.examples;
  analysis::EigenDecayAccumulator acc;
  for (std::int64_t first = 0; first < m; first += 4096)
    acc.add(io::load_pefs(files, first, std::min<std::int64_t>(4096, m - first)).pefs);
  const analysis::EigenDecay d = acc.result();
  NPEFF_CHECK(d.examples > 0, "no non-zero PEF in the given files");
  std::vector<double> index;
  for (size_t q = 0; q < d.mean.size(); ++q) index.push_back(static_cast<double>(q + 1));
  if (!o.plot.empty())
    io::write_file_atomically(
        o.plot, analysis::render_line_plot_svg("Mean decay of normalised PEF eigenvalues",
                                               "eigenvalue index", "lambda_k / lambda_1", index,
                                               d.mean, true));
  const nlohmann::json j = {{"command", "compare eigen-decay"},
                            {"pefs", o.pefs},
                            {"examples", d.examples},
                            {"skipped_zero", d.skipped},
                            {"mean", d.mean},
                            {"min", d.min},
                            {"max", d.max}};
  if (!o.out.empty()) io::write_file_atomically(o.out, j.dump(1) + "\n");
  if (o.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    for (size_t q = 0; q < d.mean.size(); ++q)
      std::cout << q + 1 << "\t" << std::setprecision(6) << d.mean[q] << "\n";
  }
  return 0;
}

}  // namespace

void add_compare_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  CLI::App* cmp = app.add_subcommand(
      "compare",
      "Analyses across decompositions and PEFs (paper Sections 3.1, 3.3, 4, App. H).\n"
      "Examples:\n"
      "  npeff compare similarity a.h5 b.h5\n"
      "  npeff compare splits --coarse c32.h5 --fine c128.h5 -p sst2.pefs.h5\n"
      "  npeff compare tunings NPEFF=n.h5 G-NPEFF=g.h5 GC=gc.h5 SAE=sae.h5 -p sst2.pefs.h5 -o "
      "t1.md\n"
      "  npeff compare eigen-decay -p trivia.pefs.h5 --plot decay.svg");
  cmp->require_subcommand(1);
  auto o = std::make_shared<CompareOptions>();
  const auto common = [&](CLI::App* s, bool with_pefs) {
    if (with_pefs)
      s->add_option("--pefs,-p", o->pefs, "compute-pefs (or predict) files of the examples")
          ->required();
    s->add_flag("--json", o->json, "Print a JSON summary on stdout");
  };
  CLI::App* sim = cmp->add_subcommand(
      "similarity",
      "Mean over the components of both decompositions of the largest cosine similarity of\n"
      "coefficient vectors with a component of the other (Section 4, Figure 2); symmetric, 1 for\n"
      "a decomposition with itself. Rows are matched by example id.");
  sim->add_option("decompositions", o->decompositions, "Two npeff.decomposition files")
      ->required()
      ->expected(2);
  common(sim, false);
  sim->callback([o, &runner] { runner = [o] { return run_similarity(*o); }; });

  CLI::App* spl = cmp->add_subcommand(
      "splits",
      "Matches each fine component to its most similar coarse component (coefficient cosine)\n"
      "and reports the fraction of matches of prediction-tuned coarse components that keep the\n"
      "tuning (App. H, Tables 12-13).");
  spl->add_option("--coarse", o->coarse, "Decomposition with fewer components")->required();
  spl->add_option("--fine", o->fine, "Decomposition with more components")->required();
  spl->add_option("--top-examples", o->top_k, "Top examples per component")->capture_default_str();
  common(spl, true);
  spl->callback([o, &runner] { runner = [o] { return run_splits(*o); }; });

  CLI::App* tun = cmp->add_subcommand(
      "tunings",
      "Table 1 (prediction-, label-, LnP-tuned fractions) and Table 3 (ICL-style classifier\n"
      "accuracy and agreement with the model) for several decompositions side by side.");
  tun->add_option("decompositions", o->decompositions, "NAME=PATH of each decomposition")
      ->required();
  tun->add_option("--top-examples", o->top_k, "Top examples per component")->capture_default_str();
  tun->add_option("--icl-fraction", o->icl_fraction, "Label share for the classifier's tuning")
      ->capture_default_str();
  tun->add_option("--out,-o", o->out, "Also write the markdown table here");
  common(tun, true);
  tun->callback([o, &runner] { runner = [o] { return run_tunings(*o); }; });

  CLI::App* eig = cmp->add_subcommand(
      "eigen-decay",
      "Mean decay of the normalised eigenvalues of the PEFs G^T G (Figure 3): per example the\n"
      "eigenvalues sorted and divided by the largest, averaged. Prints index and mean.");
  eig->add_option("--plot", o->plot, "Write an SVG plot (log scale)");
  eig->add_option("--out,-o", o->out, "Write the data as JSON");
  common(eig, true);
  eig->callback([o, &runner] { runner = [o] { return run_eigen_decay(*o); }; });
}

}  // namespace npeff::cli
