// The ground-truth benchmark's parts (docs/ground-truth.md): the synthetic task's labels obey
// the documented vote rule and its factor lists match the text; ROC AUC equals the pairwise
// count; factor scores on a hand-built decomposition; training lowers the loss and the saved
// HF directory reloads to the same logits.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "npeff/analysis/factors.h"
#include "npeff/model/loader.h"
#include "npeff/model/train.h"
#include "npeff/synth/synthetic_task.h"
#include "unit/task_fixtures.h"

namespace npeff {
namespace {

TEST(SyntheticTask, LabelsFollowTheVoteRuleAndFactorsMatchTheText) {
  for (const int64_t classes : {2, 3, 4}) {
    synth::SyntheticTaskOptions o;
    o.examples = 300;
    o.classes = classes;
    o.seed = 7;
    const synth::SyntheticTask t = synth::generate_synthetic_task(o);
    ASSERT_EQ(t.examples.size(), 300u);
    const auto words = static_cast<int64_t>(t.triggers[0].size());
    int64_t multi = 0;
    for (const auto& e : t.examples) {
      // Recompute votes from the words: "not W" votes against W's class, "W" for it.
      std::vector<int64_t> votes(static_cast<size_t>(classes), 0);
      std::vector<int64_t> factors;
      std::stringstream ss(e.text);
      std::string w, prev;
      while (ss >> w) {
        for (int64_t c = 0; c < classes; ++c)
          for (int64_t q = 0; q < words; ++q)
            if (w == t.triggers[static_cast<size_t>(c)][static_cast<size_t>(q)]) {
              const bool neg = prev == "not";
              votes[static_cast<size_t>(c)] += neg ? -1 : 1;
              factors.push_back(neg ? classes * words + c : c * words + q);
            }
        prev = w;
      }
      std::sort(factors.begin(), factors.end());
      factors.erase(std::unique(factors.begin(), factors.end()), factors.end());
      EXPECT_EQ(factors, e.factors) << e.text;
      const auto best = std::max_element(votes.begin(), votes.end()) - votes.begin();
      EXPECT_EQ(best, e.label) << e.text;
      EXPECT_EQ(std::count(votes.begin(), votes.end(), votes[static_cast<size_t>(best)]), 1);
      multi += e.factors.size() > 1;
    }
    EXPECT_GT(multi, 100) << "most examples should carry several factors (polygenic)";
    // Seeded: the same options give the same data.
    EXPECT_EQ(synth::generate_synthetic_task(o).examples[17].text, t.examples[17].text);
  }
}

TEST(RocAuc, EqualsPairwiseCount) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> score(0, 5), coin(0, 2);
  std::vector<double> s;
  std::vector<bool> y;
  for (int i = 0; i < 200; ++i) s.push_back(score(rng)), y.push_back(coin(rng) == 0);
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (y[i] && !y[j]) pairs += 1, wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
  EXPECT_NEAR(analysis::roc_auc(s, y), wins / pairs, 1e-12);
  EXPECT_EQ(analysis::roc_auc({1, 2}, {true, true}), 0.5);
}

TEST(FactorScores, HandBuiltDecomposition) {
  // 6 examples, factor 0 on rows 0-2, factor 1 on rows 3-4. Component 0 is non-zero on rows
  // 0, 1, 3 (top 2: rows 0, 1); component 1 on rows 3, 4, 5 (top 2: rows 3, 4). top_k = 2.
  const at::Tensor w =
      at::tensor({3.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0, 3.0, 0.0, 2.0, 0.0, 1.0}, at::kDouble)
          .view({6, 2});
  at::Tensor presence = at::zeros({6, 2}, at::kBool);
  for (int i : {0, 1, 2}) presence[i][0] = true;
  for (int i : {3, 4}) presence[i][1] = true;
  const auto s = analysis::score_factors(w, presence, 2);
  EXPECT_EQ(s[0].present, 3);
  EXPECT_EQ(s[0].precision_component, 0);
  EXPECT_DOUBLE_EQ(s[0].top_precision, 1.0);  // rows 0, 1
  EXPECT_EQ(s[1].precision_component, 1);
  EXPECT_DOUBLE_EQ(s[1].top_precision, 1.0);  // rows 3, 4
  // Component 0 for factor 0: positives {3, 2, 0} vs negatives {1, 0, 0}: won 3 + 3 + 0,
  // tied 0 + 0 + 2 -> (6 + 1) / 9. Component 1: positives {0, 0, 0} vs {3, 2, 1}: 0.
  EXPECT_NEAR(s[0].auc, 7.0 / 9.0, 1e-15);
  EXPECT_EQ(s[0].auc_component, 0);
}

TEST(Train, LossFallsAndTheSavedModelReloads) {
  task::Task task = task::Task::from_json_text(R"({"name": "t", "kind": "label-tokens",
    "labels": ["Negative", "Positive"], "label_prefix": "", "template": "Review: {s}\nSentiment:",
    "data": {"format": "tsv", "path": "unused", "fields": {"s": "s"}, "label_field": "l",
             "label_names": {"0": "Negative", "1": "Positive"}}})",
                                               "task");
  std::vector<task::Example> ex;
  for (int64_t i = 0; i < 64; ++i)
    ex.push_back(
        {i,
         std::string("Review: ") + (i % 2 ? "great fun" : "awful mess") + "\nSentiment:", i % 2});
  const tokenizer::Tokenizer tok = testing::char_tokenizer();
  model::ModelConfig c;
  c.vocab_size = tok.vocab_size();
  c.hidden_size = 32, c.intermediate_size = 64, c.num_layers = 1, c.num_heads = 4;
  c.num_kv_heads = 4, c.head_dim = 8, c.max_position_embeddings = 64;
  c.tie_word_embeddings = true;
  model::CausalLM m(c, model::init_parameters(c, 1), "test");
  model::TrainOptions o;
  o.steps = 60;
  o.batch_size = 16;
  o.lr = 1e-2;
  const model::TrainResult r = model::train_classifier(m, tok, task, ex, o);
  ASSERT_GE(r.loss.size(), 2u);
  EXPECT_LT(r.loss.back(), 0.2) << "loss " << r.loss.front() << " -> " << r.loss.back();
  const std::string dir = (std::filesystem::temp_directory_path() / "npeff_train_test").string();
  model::save_hf_model(m, testing::char_tokenizer_json(), dir);
  const model::LoadedModel back = model::load_model(dir);
  const at::Tensor ids = at::arange(1, 20, at::kLong).view({1, 19});
  const at::Tensor mask = at::ones({1, 19}, at::kLong);
  EXPECT_TRUE(at::equal(back.model->forward(ids, mask), m.forward(ids, mask)));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace npeff
