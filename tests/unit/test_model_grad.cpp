// The per-example gradient engine: equal to Hugging Face's per-example autograd (fixtures) and to
// a per-example loop (one example at a time, autograd with the parameters as leaves), for
// B in {1, 3, 8}, left and right padding, multi-row examples; parameter selection.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "npeff/model/loader.h"
#include "npeff/model/per_example_grad.h"
#include "unit/model_fixtures.h"
#include "unit/test_util.h"

namespace npeff::model {
namespace {

using namespace npeff::testing;

using GradMap = std::map<std::string, at::Tensor>;  // name -> [G, k, numel]
GradientConsumer collect(GradMap& out) {
  return [&out](const ParameterSlice& s, const at::Tensor& g) { out[s.name] = g.detach().clone(); };
}

class HfGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(HfGradients, EqualTransformersPerExampleAutograd) {
  const std::string dir = tiny_model(GetParam());
  const LoadedModel loaded = load_model(dir);
  const safetensors::File expected = safetensors::File::open(dir + "/expected.safetensors");
  const bool two = expected.find("objective2") != nullptr;
  GradientBatch batch;
  batch.input_ids = read_expected(expected, "input_ids");
  batch.attention_mask = read_expected(expected, "attention_mask");
  const at::Tensor targets =
      two ? at::tensor(std::vector<int64_t>{5, 7, 17, 3, 42, 90}).view({3, 2})
          : at::tensor(std::vector<int64_t>{5, 17, 42}).view({3, 1});
  // Every parameter but the embeddings: norms, biases and an untied lm_head included.
  const auto selection = ParameterSelection::parse(
      *loaded.model,
      "*,!model.embed_tokens.weight,!transformer.w[tp]e.weight,!gpt_neox.embed_in.weight");
  // GPT-2's Conv1D weights: the reference gradient is [in, out], npeff's [out, in].
  std::set<std::string> transposed;
  for (const auto& n :
       read_json(dir + "/expected.json").value("hf_transposed", nlohmann::json::array()))
    transposed.insert(n.get<std::string>());
  GradMap got;
  const GradientResult r = per_example_gradients(
      *loaded.model, selection, batch, last_token_log_prob_objectives(targets), collect(got));
  EXPECT_LE(scaled_error(r.objectives.select(1, 0), read_expected(expected, "objective")), 1e-5);
  // HF in float32 vs float64 differs by <= 2.7e-6 of each tensor's largest entry (fixture
  // README): 1e-4 of the largest entry leaves room for a different float32 summation order.
  for (const ParameterSlice& s : selection.slices()) {
    for (int64_t b = 0; b < 3; ++b) {
      for (int64_t j = 0; j < (two ? 2 : 1); ++j) {
        std::string key = (j == 0 ? "grad." : "grad2.") + std::to_string(b) + "." + s.name;
        // transformers 5 names GPT-NeoX's head lm_head in the module, embed_out in the file.
        if (s.name == "embed_out.weight" && expected.find(key) == nullptr)
          key = key.substr(0, key.size() - s.name.size()) + "lm_head.weight";
        at::Tensor want = read_expected(expected, key);
        if (transposed.count(s.name) != 0) want = want.t().contiguous();
        want = want.reshape({-1});
        EXPECT_LE(scaled_error(got.at(s.name)[b][j], want), 1e-4) << key;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Transformers, HfGradients,
                         ::testing::Values("llama_tied", "llama_untied_gqa", "qwen2_bias",
                                           "llama3_rope", "llama_sharded", "llama_all_biases",
                                           "mistral_sliding", "qwen3_yarn", "gemma2_softcap",
                                           "gemma3_local_global", "gpt2_tied", "pythia_parallel",
                                           "neox_sequential", "phi3_longrope", "olmo2_postnorm"));

// A batch of `rows` random sequences (lengths 1..T) padded on the left or the right.
GradientBatch random_batch(int64_t rows, int64_t T, bool left, uint64_t seed, int64_t vocab) {
  std::mt19937_64 rng(seed);
  GradientBatch b;
  b.input_ids = at::zeros({rows, T}, at::kLong);
  b.attention_mask = at::zeros({rows, T}, at::kLong);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t len = r == 0 ? T : 1 + static_cast<int64_t>(rng() % T);
    for (int64_t t = 0; t < len; ++t) {
      const int64_t pos = left ? T - len + t : t;
      b.input_ids[r][pos] = static_cast<int64_t>(rng() % vocab);
      b.attention_mask[r][pos] = 1;
    }
  }
  return b;
}

void expect_engine_equals_loop(const CausalLM& m, const ParameterSelection& sel,
                               const GradientBatch& batch, const Objectives& obj,
                               const std::string& what) {
  GradMap fast, slow;
  const GradientResult a = per_example_gradients(m, sel, batch, obj, collect(fast));
  const GradientResult b = per_example_gradients_loop(m, sel, batch, obj, collect(slow));
  EXPECT_LE(scaled_error(a.objectives, b.objectives), 1e-5) << what;
  double worst = 0;
  for (const ParameterSlice& s : sel.slices()) {
    ASSERT_EQ(fast.at(s.name).sizes(), slow.at(s.name).sizes()) << s.name;
    const double e = scaled_error(fast.at(s.name), slow.at(s.name));
    worst = std::max(worst, e);
    EXPECT_LE(e, 1e-5) << what << " " << s.name;
  }
  std::cout << "[ info ] " << what << ": max scaled error " << worst << "\n";
}

TEST(PerExampleGradients, EqualThePerExampleLoop) {
  const LoadedModel loaded = load_model(tiny_model("qwen2_bias"));
  const auto sel = ParameterSelection::parse(*loaded.model, "*,!model.embed_tokens.weight");
  for (int64_t B : {1, 3, 8}) {
    for (bool left : {false, true}) {
      const uint64_t seed = 1000 + static_cast<uint64_t>(B) * 2 + left;
      const GradientBatch batch = random_batch(B, 9, left, seed, 96);
      std::mt19937_64 rng(seed);
      at::Tensor targets = at::randint(96, {B, 3}, at::kLong);
      expect_engine_equals_loop(
          *loaded.model, sel, batch, last_token_log_prob_objectives(targets),
          "B=" + std::to_string(B) + (left ? " left" : " right") + " seed=" + std::to_string(seed));
    }
  }
}

TEST(PerExampleGradients, RowsOfAnExampleAreSummed) {
  // Three examples of 2, 1 and 3 rows (a prompt with several suffixes): objective j of an example
  // is a softmax over its rows' summed token log-probs, so rows interact within the example.
  const LoadedModel loaded = load_model(tiny_model("llama_untied_gqa"));
  const auto sel = ParameterSelection::parse(*loaded.model, "");
  GradientBatch batch = random_batch(6, 7, false, 77, 96);
  batch.group = {0, 0, 1, 2, 2, 2};
  batch.group_ids = {10, 11, 12};
  const Objectives obj = [](const ModelOutputs& out, const GradientBatch& b) {
    const at::Tensor lp = at::log_softmax(out.all_logits(), -1);
    // Row score: sum over real positions t >= 1 of log p(token_t | prefix).
    const at::Tensor next = b.input_ids.to(at::kLong).narrow(1, 1, b.input_ids.size(1) - 1);
    const at::Tensor m = b.attention_mask.to(at::kFloat).narrow(1, 1, b.input_ids.size(1) - 1);
    const at::Tensor tok = lp.narrow(1, 0, lp.size(1) - 1).gather(2, next.unsqueeze(2)).squeeze(2);
    const at::Tensor row_score = (tok * m).sum(1);  // [B]
    std::vector<at::Tensor> per_group;
    int64_t start = 0;
    for (int64_t g = 0; g < b.num_groups(); ++g) {
      int64_t end = start;
      while (end < static_cast<int64_t>(b.group.size()) && b.group[end] == g) ++end;
      const at::Tensor s = row_score.narrow(0, start, end - start);
      const at::Tensor p = at::log_softmax(s, 0);       // over the example's rows
      per_group.push_back(at::stack({p[0], s.sum()}));  // k = 2
      start = end;
    }
    return at::stack(per_group, 0);
  };
  expect_engine_equals_loop(*loaded.model, sel, batch, obj, "grouped rows");
}

TEST(ParameterSelection, DefaultPatternsAndErrors) {
  const LoadedModel loaded = load_model(tiny_model("llama_untied_gqa"));
  const auto def = ParameterSelection::parse(*loaded.model, "");
  for (const ParameterSlice& s : def.slices()) {
    EXPECT_EQ(s.name.find("norm"), std::string::npos) << s.name;
    EXPECT_EQ(s.name.rfind("model.layers.", 0), 0u) << s.name;
  }
  EXPECT_EQ(def.slices().size(), 2u * 7u);
  int64_t offset = 0;
  for (const ParameterSlice& s : def.slices()) {
    EXPECT_EQ(s.offset, offset);
    offset += s.numel;
  }
  EXPECT_EQ(def.total(), offset);
  const auto one = ParameterSelection::parse(*loaded.model, "model.layers.1.mlp.*_proj.weight");
  EXPECT_EQ(one.slices().size(), 3u);
  expect_error([&] { ParameterSelection::parse(*loaded.model, "nothing.*"); },
               {"matches no parameter"});
  expect_error([&] { ParameterSelection::parse(*loaded.model, "*"); }, {"embedding"});
  expect_error([&] { ParameterSelection::parse(*loaded.model, "!*norm*"); },
               {"no include pattern"});
  EXPECT_TRUE(glob_match("model.layers.*.mlp.*", "model.layers.12.mlp.up_proj.weight"));
  EXPECT_FALSE(glob_match("model.layers.?.mlp.*", "model.layers.12.mlp.up_proj.weight"));
  EXPECT_TRUE(glob_match("model.layers.2[89].*", "model.layers.28.mlp.up_proj.weight"));
  EXPECT_FALSE(glob_match("model.layers.2[89].*", "model.layers.27.mlp.up_proj.weight"));
  EXPECT_TRUE(glob_match("model.layers.[^0-2]*", "model.layers.3.mlp.up_proj.weight"));
  EXPECT_FALSE(glob_match("model.layers.[^0-2]*", "model.layers.12.mlp.up_proj.weight"));
  EXPECT_TRUE(glob_match("a[bc", "a[bc"));  // an unclosed class is literal
}

}  // namespace
}  // namespace npeff::model
