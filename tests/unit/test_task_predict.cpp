// Task configs, data readers and zero-shot predictions: predictions equal a brute-force
// computation (each example alone through CausalLM::forward, full logits, the task's formula);
// every malformed config or data file is refused with a message naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "npeff/model/loader.h"
#include "npeff/task/predict.h"
#include "unit/model_fixtures.h"
#include "unit/task_fixtures.h"
#include "unit/test_util.h"

namespace npeff::task {
namespace {

using namespace npeff::testing;
using json = nlohmann::json;

class TaskTest : public TempDirTest {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
    return path(name);
  }
  Task task(const std::string& kind, const std::vector<std::string>& labels,
            const std::string& data, const std::string& label_prefix = "") {
    json j = {{"name", "t"},
              {"kind", kind},
              {"template", "Review: {text}\nSentiment:"},
              {"label_prefix", label_prefix},
              {"data",
               {{"format", "tsv"},
                {"path", data},
                {"fields", {{"text", "sentence"}}},
                {"label_field", "label"},
                {"label_names", {{"0", labels[0]}, {"1", labels[1]}}}}}};
    if (kind != "vocab") j["labels"] = labels;
    if (kind == "vocab") j["data"].erase("label_field");
    return Task::from_json_text(j.dump(), "task.json");
  }
  std::string sst_like() {
    return write("d.tsv",
                 "sentence\tlabel\na great film\t1\nawful, dull and long\t0\nfine\t1\n"
                 "i did not like it at all\t0\nWow!\t1\n");
  }
};

TEST_F(TaskTest, LabelTokenPredictionsEqualBruteForce) {
  const model::LoadedModel m = model::load_model(tiny_model("llama_untied_gqa"));
  const tokenizer::Tokenizer tok = char_tokenizer();
  const Task t = task("label-tokens", {"Negative", "Positive"}, sst_like());
  const std::vector<Example> ex = load_examples(t);
  ASSERT_EQ(ex.size(), 5u);
  EXPECT_EQ(ex[1].prompt, "Review: awful, dull and long\nSentiment:");
  EXPECT_EQ(ex[1].label, 0);
  const Predictions p = predict(*m.model, tok, t, ex, 2);
  const auto labels = label_token_ids(t, tok);
  for (size_t i = 0; i < ex.size(); ++i) {
    const auto ids32 = tok.encode(ex[i].prompt);
    const at::Tensor in =
        at::tensor(std::vector<int64_t>(ids32.begin(), ids32.end())).view({1, -1});
    const at::Tensor logits = m.model->forward(in, at::ones_like(in))[0][in.size(1) - 1];
    const at::Tensor want = at::softmax(at::stack({logits[labels[0][0]], logits[labels[1][0]]}), 0);
    EXPECT_LE(scaled_error(p.probs[i], want), 1e-5) << i;
    EXPECT_EQ(p.prediction[i].item<int64_t>(), want.argmax().item<int64_t>());
  }
}

TEST_F(TaskTest, SuffixPredictionsEqualBruteForce) {
  const model::LoadedModel m = model::load_model(tiny_model("qwen2_bias"));
  const tokenizer::Tokenizer tok = char_tokenizer();
  const Task t = task("suffixes", {"bad", "good"}, sst_like(), " ");
  const std::vector<Example> ex = load_examples(t, 1, 3);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].id, 1);
  const Predictions p = predict(*m.model, tok, t, ex, 3);
  const auto labels = label_token_ids(t, tok);
  for (size_t i = 0; i < ex.size(); ++i) {
    std::vector<double> scores;
    for (const auto& l : labels) {
      auto ids32 = tok.encode(ex[i].prompt);
      const size_t prompt_len = ids32.size();
      ids32.insert(ids32.end(), l.begin(), l.end());
      const at::Tensor in =
          at::tensor(std::vector<int64_t>(ids32.begin(), ids32.end())).view({1, -1});
      const at::Tensor lp =
          at::log_softmax(m.model->forward(in, at::ones_like(in))[0].to(at::kDouble), -1);
      double s = 0;
      for (size_t j = 0; j < l.size(); ++j)
        s += lp[static_cast<int64_t>(prompt_len + j - 1)][l[j]].item<double>();
      scores.push_back(s);
    }
    const at::Tensor want = at::softmax(at::tensor(scores), 0);
    EXPECT_LE(scaled_error(p.probs[i], want), 1e-5) << i;
  }
}

TEST_F(TaskTest, VocabPredictionsAreTheTopTokens) {
  const model::LoadedModel m = model::load_model(tiny_model("llama_tied"));
  const Task t = task("vocab", {"x", "y"}, sst_like());
  const std::vector<Example> ex = load_examples(t);
  const Predictions p = predict(*m.model, char_tokenizer(), t, ex, 4, nullptr, 5);
  ASSERT_EQ(p.top_ids.sizes(), (at::IntArrayRef{5, 5}));
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_GE(p.probs[i][0].item<float>(), p.probs[i][4].item<float>());
    EXPECT_EQ(p.prediction[i].item<int64_t>(), p.top_ids[i][0].item<int64_t>());
  }
}

TEST_F(TaskTest, BadConfigsAndDataAreRefused) {
  const std::string d = sst_like();
  const auto cfg = [&](const std::string& tmpl, const std::string& kind = "label-tokens",
                       const json& labels = json::array({"A", "B"}),
                       const std::string& format = "tsv") {
    return json({{"kind", kind},
                 {"template", tmpl},
                 {"labels", labels},
                 {"data",
                  {{"format", format},
                   {"path", d},
                   {"fields", {{"text", "sentence"}}},
                   {"label_field", "label"}}}})
        .dump();
  };
  expect_error([&] { Task::from_json_text(cfg("Review: no placeholder"), "t.json"); },
               {"no {placeholder}"});
  expect_error([&] { Task::from_json_text(cfg("Review: {other}"), "t.json"); },
               {"{other}", "data.fields"});
  expect_error([&] { Task::from_json_text(cfg("{text}", "magic"), "t.json"); }, {"kind 'magic'"});
  expect_error(
      [&] {
        Task::from_json_text(cfg("{text}", "label-tokens", {"A", "A"}), "t.json");
      },
      {"labels repeat"});
  expect_error([&] { Task::from_json_text(cfg("{text}", "label-tokens", {"A"}), "t.json"); },
               {"at least 2 labels"});
  expect_error(
      [&] {
        Task::from_json_text(cfg("{text}", "label-tokens", {"A", "B"}, "xml"), "t.json");
      },
      {"data.format 'xml'"});
  expect_error([&] { Task::from_json_text("[1]", "t.json"); }, {"JSON object"});
  expect_error([&] { Task::from_json_text("{\"kind\": \"vocab\"}", "t.json"); },
               {"malformed task config"});
  // Labels outside the label set, missing fields, empty data, a label-token collision.
  const Task t =
      Task::from_json_text(cfg("{text}", "label-tokens", {"Negative", "Positive"}), "t.json");
  expect_error([&] { load_examples(t); }, {"d.tsv:2", "label '1'", "not one of"});
  Task missing =
      task("label-tokens", {"Negative", "Positive"}, write("m.tsv", "text\tlabel\nhi\t1\n"));
  expect_error([&] { load_examples(missing); }, {"m.tsv:2", "missing field 'sentence'"});
  Task empty = task("label-tokens", {"Negative", "Positive"}, write("e.tsv", "sentence\tlabel\n"));
  expect_error([&] { load_examples(empty); }, {"no examples"});
  Task ragged =
      task("label-tokens", {"Negative", "Positive"}, write("r.tsv", "sentence\tlabel\na\tb\tc\n"));
  expect_error([&] { load_examples(ragged); }, {"r.tsv:2", "3 columns"});
  const Task collide = task("label-tokens", {"Nope", "Nice"}, d);
  expect_error([&] { label_token_ids(collide, char_tokenizer()); },
               {"'Nope' and 'Nice'", "same token"});
}

TEST(TaskConfigs, ShippedConfigsParseAndReadTheSharedData) {
  const char* const names[] = {"sst2", "yat", "clinc150", "triviaqa"};
  for (const char* name : names)
    EXPECT_EQ(Task::load(source_dir() + "/configs/tasks/" + name + ".json").name, name);
  // Reading the data is the important half: without ../shared the test shows as skipped.
  if (!path_exists(shared_dir() + "/data/README.md"))
    GTEST_SKIP() << "../shared absent: " << shared_dir() << "/data (the configs parsed)";
  for (const char* name : names) {
    const Task t = Task::load(source_dir() + "/configs/tasks/" + name + ".json");
    // data.path is relative to configs/tasks/ in the file, resolved by Task::load.
    EXPECT_TRUE(std::filesystem::path(t.data.path).is_absolute()) << t.data.path;
    const std::vector<Example> ex = load_examples(t, 0, 50);
    EXPECT_EQ(ex.size(), 50u) << name;
    EXPECT_EQ(ex[0].label >= 0, t.kind != TaskKind::kVocab) << name;
  }
}

}  // namespace
}  // namespace npeff::task
