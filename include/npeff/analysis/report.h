// tune-report's content (report.json) and its self-contained HTML page (index.html: inline CSS,
// JS and SVG, no network), plus the small SVG plots other analyses write.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "npeff/analysis/examples.h"

namespace npeff::analysis {

struct TuneReportInputs {
  std::string name;           ///< shown in titles and tables, e.g. "NPEFF"
  std::string method;         ///< the decomposition's `method` attribute
  std::string decomposition;  ///< path
  std::vector<std::string> example_files;
  at::Tensor w;  ///< [m, C], rows aligned with `examples`
  ExampleTable examples;
  std::vector<std::int64_t> loss_steps;
  std::vector<double> loss_values;
  std::int64_t top_k = 16;
  double icl_fraction = 0.75;  ///< Section 3.3's 75% rule
  std::int64_t histogram_bins = 20;
  std::int64_t prompt_chars = 600;  ///< longer prompts are cut (with "...")
};

/// Everything the page shows: summary (Table 1 fractions), loss curve, per-component top
/// examples, tunings and coefficient histogram, the ICL-style classifier when the task has
/// labels. Schema documented in docs/analysis.md.
nlohmann::json build_tune_report(const TuneReportInputs& inputs);

/// index.html for a report (the JSON is embedded; the page renders it with inline JS).
std::string render_report_html(const nlohmann::json& report);

/// A standalone SVG line plot (optionally log-scale y), e.g. the eigenvalue decay of Figure 3.
std::string render_line_plot_svg(const std::string& title, const std::string& x_label,
                                 const std::string& y_label, const std::vector<double>& x,
                                 const std::vector<double>& y, bool log_y);

}  // namespace npeff::analysis
