// A generated text-classification task whose labels are a known combination of planted factors
// (docs/ground-truth.md): each class has trigger words; an example mentions several triggers,
// some negated ("not great"); every un-negated trigger votes for its class, every negated one
// against it, and the label is the class with the most votes (examples with a tie are redrawn).
// Several factors act on most examples, so the behaviour is polygenic by construction. Seeded:
// the same options give the same data (with libstdc++'s std::uniform_int_distribution).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace npeff::synth {

struct SyntheticTaskOptions {
  std::int64_t examples = 2000;
  std::int64_t classes = 2;  ///< 2 (sentiment words) to 4 (topic words)
  std::uint64_t seed = 0;
  std::int64_t min_triggers = 1;  ///< trigger mentions per example
  std::int64_t max_triggers = 3;
  double negation_rate = 0.25;   ///< chance that a mention is negated
  std::int64_t min_fillers = 2;  ///< neutral words per example
  std::int64_t max_fillers = 5;
};

struct SyntheticExample {
  std::string text;
  std::int64_t label = 0;
  std::vector<std::int64_t> factors;  ///< indices into SyntheticTask::factor_names, sorted
};

struct SyntheticTask {
  std::vector<std::string> class_names;
  std::vector<std::vector<std::string>> triggers;  ///< per class
  /// Factors: "word" (an un-negated mention of a trigger word), then "not <class>" (a negated
  /// mention of any trigger of that class), in class order.
  std::vector<std::string> factor_names;
  std::string prompt_template;  ///< with a {sentence} placeholder
  std::vector<SyntheticExample> examples;
};

SyntheticTask generate_synthetic_task(const SyntheticTaskOptions& options);

}  // namespace npeff::synth
