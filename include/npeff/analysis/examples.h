// What the analyses know about each example: gold label, the model's prediction and the prompt,
// keyed by example id. Read from the files compute-pefs (npeff.pefs) and predict
// (npeff.predictions) write; decompositions refer to examples only by id.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace npeff::analysis {

struct ExampleTable {
  std::vector<std::int64_t> example_ids;
  std::vector<std::int64_t> labels;       ///< gold label index, -1 when unknown
  std::vector<std::int64_t> predictions;  ///< argmax label index (vocab tasks: token id)
  std::vector<std::string> prompts;       ///< empty strings when the files hold none
  std::vector<std::string> label_names;   ///< empty for open-vocabulary tasks
  std::vector<std::string> sources;       ///< files read

  std::int64_t size() const { return static_cast<std::int64_t>(example_ids.size()); }
  /// True when at least one example has a gold label (label-tuning is defined).
  bool has_labels() const;
  /// Name of label/prediction `value`: the label name, or "token N" for vocabulary tasks.
  std::string label_text(std::int64_t value) const;
  /// Row of example `id`, or -1.
  std::int64_t row_of(std::int64_t id) const;
  /// Rebuilds the id index (after filling the vectors by hand, e.g. in tests).
  void index_ids();

 private:
  std::unordered_map<std::int64_t, std::int64_t> index_;
};

/// Reads and concatenates the per-example facts of npeff.pefs (compute-pefs: /labels,
/// /prediction, /prompts, /label_names) and npeff.predictions (/label, /prediction, /prompts,
/// /labels) files. Files without predictions are refused (e.g. synth-pefs output); all files
/// must agree on the label names; duplicate example ids are refused.
ExampleTable read_example_table(const std::vector<std::string>& paths);

/// The rows of `table` for `ids`, in that order. Throws npeff::Error naming `what` and the first
/// id the table lacks.
ExampleTable select_examples(const ExampleTable& table, const std::vector<std::int64_t>& ids,
                             const std::string& what);

}  // namespace npeff::analysis
