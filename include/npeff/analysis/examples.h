// What the analyses know about each example: gold label, the model's prediction and the prompt,
// keyed by example id. Read from the files compute-pefs (npeff.pefs) and predict
// (npeff.predictions) write; decompositions refer to examples only by id.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace npeff::tokenizer {
class Tokenizer;
}

namespace npeff::analysis {

/// How a vocabulary task's token ids (its predictions, and labels if any) are shown.
struct TokenTexts {
  std::unordered_map<std::int64_t, std::string> text;  ///< decoded text of each token id
  std::string tokenizer;  ///< the tokenizer that decoded them ("" when none did)
  std::string note;       ///< why ids are shown as "token N", when some or all are ("" otherwise)
};

struct ExampleTable {
  std::vector<std::int64_t> example_ids;
  std::vector<std::int64_t> labels;       ///< gold label index, -1 when unknown
  std::vector<std::int64_t> predictions;  ///< argmax label index (vocab tasks: token id)
  std::vector<std::string> prompts;       ///< empty strings when the files hold none
  std::vector<std::string> label_names;   ///< empty for open-vocabulary tasks
  bool vocab = false;  ///< a vocabulary task (the files hold /top_ids): predictions are token ids
  std::vector<std::string> sources;  ///< files read
  TokenTexts tokens;                 ///< vocabulary tasks: token texts (decode_tokens)

  std::int64_t size() const { return static_cast<std::int64_t>(example_ids.size()); }
  /// True when at least one example has a gold label (label-tuning is defined).
  bool has_labels() const;
  /// True for a vocabulary task: predictions (and labels, if any) are token ids.
  bool vocabulary() const { return vocab; }
  /// Name of label/prediction `value`: the label name; for vocabulary tasks the token's text,
  /// quoted (control characters escaped), with its id: `" Paris" (token 3421)`, or "token N"
  /// when it was not decoded.
  std::string label_text(std::int64_t value) const;
  /// Row of example `id`, or -1.
  std::int64_t row_of(std::int64_t id) const;
  /// Rebuilds the id index (after filling the vectors by hand, e.g. in tests).
  void index_ids();

 private:
  std::unordered_map<std::int64_t, std::int64_t> index_;
};

/// Reads and concatenates the per-example facts of npeff.pefs (compute-pefs) and
/// npeff.predictions (predict) files: /labels, /prediction, /prompts, /label_names (predictions
/// version 1: /label and /labels). Files without predictions are refused (e.g. synth-pefs
/// output); all files must agree on the label names; duplicate example ids are refused.
ExampleTable read_example_table(const std::vector<std::string>& paths);

/// Decodes every token id among a vocabulary task's labels and predictions with `tok` into
/// table.tokens (ids outside its vocabulary stay "token N", counted in the note); `source` names
/// the tokenizer. Does nothing for label tasks.
void decode_tokens(ExampleTable& table, const tokenizer::Tokenizer& tok, const std::string& source);

/// decode_tokens with the tokenizer of a vocabulary task's examples: `tokenizer_path` when given
/// (npeff::Error when it cannot be loaded), else the one the first example file's provenance
/// records (its "tokenizer", else its "model"'s own; relative paths also tried against the
/// file's folder). When that is unavailable, ids stay "token N" and table.tokens.note says why
/// (also logged as a warning). Does nothing for label tasks.
void decode_vocabulary(ExampleTable& table, const std::string& tokenizer_path = "");

/// The rows of `table` for `ids`, in that order. Throws npeff::Error naming `what` and the first
/// id the table lacks.
ExampleTable select_examples(const ExampleTable& table, const std::vector<std::int64_t>& ids,
                             const std::string& what);

}  // namespace npeff::analysis
