#include "npeff/analysis/report.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "npeff/analysis/tuning.h"
#include "npeff/core/error.h"
#include "npeff/core/version.h"

namespace npeff::analysis {
namespace {

std::string cut(const std::string& s, std::int64_t chars) {
  if (chars <= 0 || static_cast<std::int64_t>(s.size()) <= chars) return s;
  size_t n = static_cast<size_t>(chars);
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // UTF-8 boundary
  return s.substr(0, n) + "...";
}

nlohmann::json histogram(const double* column, std::int64_t m, std::int64_t bins) {
  double hi = 0;
  std::int64_t nonzero = 0;
  for (std::int64_t i = 0; i < m; ++i)
    if (column[i] > 0) hi = std::max(hi, column[i]), ++nonzero;
  std::vector<std::int64_t> counts(static_cast<size_t>(bins), 0);
  for (std::int64_t i = 0; i < m && hi > 0; ++i) {
    if (!(column[i] > 0)) continue;
    auto b = static_cast<std::int64_t>(column[i] / hi * static_cast<double>(bins));
    ++counts[static_cast<size_t>(std::min(b, bins - 1))];
  }
  return {{"max", hi}, {"counts", counts}, {"zeros", m - nonzero}};
}

}  // namespace

nlohmann::json build_tune_report(const TuneReportInputs& in) {
  const std::int64_t m = in.w.size(0);
  NPEFF_CHECK(in.examples.size() == m, "the report has ", m, " coefficient rows but ",
              in.examples.size(), " examples");
  const ExampleTable& ex = in.examples;
  const std::vector<ComponentTuning> tunings =
      component_tunings(in.w, ex.labels, ex.predictions, in.top_k);
  const TuningSummary s = summarize_tunings(tunings, ex.has_labels());
  std::int64_t labelled = 0, correct = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    const std::int64_t l = ex.labels[static_cast<size_t>(i)];
    if (l >= 0) ++labelled, correct += l == ex.predictions[static_cast<size_t>(i)];
  }
  nlohmann::json r;
  r["schema"] = "npeff.tune_report";
  r["schema_version"] = 1;
  r["npeff_version"] = version();
  r["name"] = in.name;
  r["method"] = in.method;
  r["decomposition"] = in.decomposition;
  r["example_files"] = in.example_files;
  r["examples"] = m;
  r["top_k"] = in.top_k;
  r["label_names"] = ex.label_names;
  if (ex.vocabulary()) {  // predictions are token ids: how they are shown
    r["token_decoding"] = {
        {"tokenizer", ex.tokens.tokenizer.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(ex.tokens.tokenizer)},
        {"decoded", ex.tokens.text.size()},
        {"note",
         ex.tokens.note.empty() ? nlohmann::json(nullptr) : nlohmann::json(ex.tokens.note)}};
  }
  r["model_accuracy"] =
      labelled ? nlohmann::json(static_cast<double>(correct) / static_cast<double>(labelled))
               : nlohmann::json(nullptr);
  r["summary"] = {{"components", s.components},
                  {"included", s.included},
                  {"excluded", s.excluded},
                  {"prediction_tuned", s.prediction_tuned},
                  {"label_tuned", s.label_tuned},
                  {"lnp", s.lnp},
                  {"prediction_fraction", s.prediction_fraction},
                  {"label_fraction", s.has_labels ? nlohmann::json(s.label_fraction) : nullptr},
                  {"lnp_fraction", s.has_labels ? nlohmann::json(s.lnp_fraction) : nullptr},
                  {"has_labels", s.has_labels}};
  r["loss"] = {{"step", in.loss_steps}, {"value", in.loss_values}};
  if (s.has_labels && ex.label_names.size() >= 2) {
    const IclClassifier icl = icl_classifier(in.w, tunings, ex.labels, ex.predictions,
                                             static_cast<std::int64_t>(ex.label_names.size()),
                                             in.icl_fraction, in.method == "kmeans");
    r["icl"] = {{"label_fraction", in.icl_fraction}, {"tuned_components", icl.tuned_components},
                {"accuracy", icl.accuracy},          {"agreement_with_model", icl.agreement},
                {"undecided", icl.undecided},        {"one_hot", in.method == "kmeans"}};
  }
  const at::Tensor wt = in.w.to(at::kDouble).cpu().t().contiguous();
  nlohmann::json comps = nlohmann::json::array();
  for (const ComponentTuning& t : tunings) {
    nlohmann::json top = nlohmann::json::array();
    for (size_t q = 0; q < t.top_rows.size(); ++q) {
      const auto row = static_cast<size_t>(t.top_rows[q]);
      top.push_back({{"example_id", ex.example_ids[row]},
                     {"coefficient", t.top_values[q]},
                     {"label", ex.label_text(ex.labels[row])},
                     {"prediction", ex.label_text(ex.predictions[row])},
                     {"prompt", cut(ex.prompts[row], in.prompt_chars)}});
    }
    comps.push_back(
        {{"id", t.component},
         {"nonzero", t.nonzero},
         {"included", t.included},
         {"prediction_tuned", t.prediction_tuned},
         {"label_tuned", t.label_tuned},
         {"lnp", t.lnp},
         {"majority_prediction", ex.label_text(t.majority_prediction)},
         {"majority_prediction_fraction", t.majority_prediction_fraction},
         {"majority_label", ex.label_text(t.majority_label)},
         {"majority_label_fraction", t.majority_label_fraction},
         {"histogram", histogram(wt.data_ptr<double>() + t.component * m, m, in.histogram_bins)},
         {"top", top}});
  }
  r["components"] = comps;
  return r;
}

std::string render_line_plot_svg(const std::string& title, const std::string& x_label,
                                 const std::string& y_label, const std::vector<double>& x,
                                 const std::vector<double>& y, bool log_y) {
  NPEFF_CHECK(x.size() == y.size() && !x.empty(), "plot needs equally long, non-empty x and y");
  const double W = 640, H = 400, L = 70, R = 20, T = 40, B = 50;
  const auto fy = [&](double v) { return log_y ? std::log10(std::max(v, 1e-300)) : v; };
  double x0 = *std::min_element(x.begin(), x.end()), x1 = *std::max_element(x.begin(), x.end());
  double y0 = fy(y[0]), y1 = fy(y[0]);
  for (const double v : y) y0 = std::min(y0, fy(v)), y1 = std::max(y1, fy(v));
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const auto px = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  const auto py = [&](double v) { return H - B - (fy(v) - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << title
    << "</text>\n"
    << "<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B
    << "\" stroke=\"black\"/><line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\""
    << H - B << "\" stroke=\"black\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double vy = y0 + (y1 - y0) * k / 4.0, yy = H - B - (H - T - B) * k / 4.0;
    const double vx = x0 + (x1 - x0) * k / 4.0, xx = L + (W - L - R) * k / 4.0;
    o << "<text x=\"" << L - 6 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\">"
      << (log_y ? "1e" + std::to_string(static_cast<int>(std::lround(vy * 10)) / 10.0).substr(0, 5)
                : std::to_string(vy).substr(0, 6))
      << "</text><text x=\"" << xx << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">"
      << std::to_string(vx).substr(0, 6) << "</text>\n";
  }
  o << "<text x=\"" << W / 2 << "\" y=\"" << H - 10 << "\" text-anchor=\"middle\">" << x_label
    << "</text><text x=\"16\" y=\"" << H / 2 << "\" transform=\"rotate(-90 16 " << H / 2
    << ")\" text-anchor=\"middle\">" << y_label << (log_y ? " (log scale)" : "") << "</text>\n"
    << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"";
  for (size_t i = 0; i < x.size(); ++i) o << px(x[i]) << "," << py(y[i]) << " ";
  o << "\"/>\n";
  for (size_t i = 0; i < x.size(); ++i)
    o << "<circle cx=\"" << px(x[i]) << "\" cy=\"" << py(y[i]) << "\" r=\"3\" fill=\"#1f77b4\"/>";
  o << "\n</svg>\n";
  return o.str();
}

}  // namespace npeff::analysis
