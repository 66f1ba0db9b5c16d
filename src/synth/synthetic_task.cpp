#include "npeff/synth/synthetic_task.h"

#include <algorithm>
#include <random>

#include "npeff/core/error.h"

namespace npeff::synth {
namespace {

// Sentiment words for two classes (a zero-shot LM can read them); topic words beyond.
const std::vector<std::string> kSentimentClasses = {"Negative", "Positive"};
const std::vector<std::vector<std::string>> kSentimentTriggers = {
    {"awful", "boring", "dreadful", "clumsy"}, {"great", "wonderful", "delightful", "brilliant"}};
const std::vector<std::string> kTopicClasses = {"Sports", "Food", "Music", "Physics"};
const std::vector<std::vector<std::string>> kTopicTriggers = {
    {"goal", "coach", "league", "stadium"},
    {"recipe", "dinner", "spicy", "bakery"},
    {"guitar", "melody", "concert", "album"},
    {"atom", "theory", "telescope", "experiment"}};
const std::vector<std::string> kFillers = {"the",  "movie",   "plot",  "was",   "and",
                                           "but",  "really",  "quite", "story", "it",
                                           "felt", "overall", "some",  "parts", "very"};

}  // namespace

SyntheticTask generate_synthetic_task(const SyntheticTaskOptions& o) {
  NPEFF_CHECK(o.examples >= 1, "--examples must be >= 1, got ", o.examples);
  NPEFF_CHECK(o.classes >= 2 && o.classes <= 4, "--classes must lie in [2, 4], got ", o.classes);
  NPEFF_CHECK(o.min_triggers >= 1 && o.max_triggers >= o.min_triggers,
              "need 1 <= --min-triggers <= --max-triggers");
  NPEFF_CHECK(o.negation_rate >= 0 && o.negation_rate < 1, "--negation-rate must lie in [0, 1)");
  NPEFF_CHECK(o.min_fillers >= 0 && o.max_fillers >= o.min_fillers,
              "need 0 <= --min-fillers <= --max-fillers");
  SyntheticTask t;
  const bool sentiment = o.classes == 2;
  for (std::int64_t c = 0; c < o.classes; ++c) {
    const auto i = static_cast<size_t>(c);
    t.class_names.push_back(sentiment ? kSentimentClasses[i] : kTopicClasses[i]);
    t.triggers.push_back(sentiment ? kSentimentTriggers[i] : kTopicTriggers[i]);
  }
  t.prompt_template = sentiment ? "Review: {sentence}\nSentiment:" : "Text: {sentence}\nTopic:";
  const auto words = static_cast<std::int64_t>(t.triggers[0].size());
  for (const auto& ws : t.triggers)
    t.factor_names.insert(t.factor_names.end(), ws.begin(), ws.end());
  for (const auto& name : t.class_names) t.factor_names.push_back("not " + name);

  std::mt19937_64 rng(o.seed);
  const auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  while (static_cast<std::int64_t>(t.examples.size()) < o.examples) {
    std::vector<std::int64_t> votes(static_cast<size_t>(o.classes), 0);
    std::vector<std::string> pieces;
    std::vector<std::int64_t> factors;
    const std::int64_t mentions = uniform(o.min_triggers, o.max_triggers);
    for (std::int64_t q = 0; q < mentions; ++q) {
      const std::int64_t c = uniform(0, o.classes - 1), w = uniform(0, words - 1);
      const bool negated = unit(rng) < o.negation_rate;
      const std::string& word = t.triggers[static_cast<size_t>(c)][static_cast<size_t>(w)];
      votes[static_cast<size_t>(c)] += negated ? -1 : 1;
      pieces.push_back(negated ? "not " + word : word);
      factors.push_back(negated ? o.classes * words + c : c * words + w);
    }
    const std::int64_t fillers = uniform(o.min_fillers, o.max_fillers);
    for (std::int64_t q = 0; q < fillers; ++q)
      pieces.push_back(kFillers[static_cast<size_t>(
          uniform(0, static_cast<std::int64_t>(kFillers.size()) - 1))]);
    const auto best = std::max_element(votes.begin(), votes.end());
    if (std::count(votes.begin(), votes.end(), *best) != 1) continue;  // a tie: redraw
    std::shuffle(pieces.begin(), pieces.end(), rng);
    SyntheticExample e;
    for (size_t q = 0; q < pieces.size(); ++q) e.text += (q ? " " : "") + pieces[q];
    e.label = best - votes.begin();
    std::sort(factors.begin(), factors.end());
    factors.erase(std::unique(factors.begin(), factors.end()), factors.end());
    e.factors = factors;
    t.examples.push_back(std::move(e));
  }
  return t;
}

}  // namespace npeff::synth
