// What the model families read from their configs, beyond the logits and gradients that
// test_model / test_model_grad compare with transformers: stop ids (config.json and
// generation_config.json eos lists), rope-scaling forms and their refusals, Llama's
// attention_bias (q/k/v AND o_proj), per-family default parameter selections, and the messages
// for unsupported architectures.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "npeff/core/error.h"
#include "npeff/model/generate.h"
#include "npeff/model/loader.h"
#include "npeff/model/per_example_grad.h"
#include "unit/model_fixtures.h"
#include "unit/safetensors_writer.h"
#include "unit/test_util.h"

namespace npeff::model {
namespace {

using namespace npeff::testing;
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class FamilyConfig : public TempDirTest {
 protected:
  // A copy of a tiny fixture model whose config.json gets `edits` merged in.
  std::string copy_with(const std::string& name, const nlohmann::json& edits) {
    const std::string dir = path(name);
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(tiny_model(name))) {
      if (e.path().filename().string().rfind("expected", 0) != 0)
        fs::copy_file(e.path(), dir + "/" + e.path().filename().string());
    }
    nlohmann::json config = read_json(dir + "/config.json");
    config.update(edits);
    std::ofstream(dir + "/config.json") << config.dump(2);
    return dir;
  }
};

// Finding: generation stopped only at the tokenizer's EOS, so a config listing eos_token_id
// [A, B] (the Llama 3.x layout) kept generating past B, where transformers stops.
TEST_F(FamilyConfig, EveryListedEosIdStopsGeneration) {
  const LoadedModel plain = load_model(tiny_model("llama_tied"));
  GenerateOptions go;
  go.max_new_tokens = 8;
  const std::vector<int64_t> prompt = {1, 5, 9};
  const std::vector<int64_t> free_run = generate(*plain.model, prompt, go);
  ASSERT_EQ(free_run.size(), 8u);
  // The first position whose token did not occur before (random tiny models often repeat one
  // token: then the first): generation must end right there.
  size_t stop_at = 0;
  while (stop_at < free_run.size() &&
         std::find(free_run.begin(), free_run.begin() + static_cast<long>(stop_at),
                   free_run[stop_at]) != free_run.begin() + static_cast<long>(stop_at))
    ++stop_at;
  const int64_t B = free_run[stop_at];
  const int64_t A = B == 95 ? 94 : 95;  // an id the run never produces first
  const std::string dir = copy_with("llama_tied", {{"eos_token_id", {A, B}}});
  const LoadedModel listed = load_model(dir);
  EXPECT_EQ(listed.model->config().eos_token_ids, (std::vector<int64_t>{A, B}));
  go.stop_ids = stop_ids(listed);
  const std::vector<int64_t> stopped = generate(*listed.model, prompt, go);
  EXPECT_EQ(stopped, std::vector<int64_t>(free_run.begin(), free_run.begin() + stop_at + 1));
  // generation_config.json's eos_token_id replaces config.json's, as in transformers.
  std::ofstream(dir + "/generation_config.json") << nlohmann::json{{"eos_token_id", A}}.dump();
  EXPECT_EQ(load_model(dir).model->config().eos_token_ids, std::vector<int64_t>{A});
}

// The real openai-community/gpt2 checkpoint (and every base-model checkpoint) stores names
// without the LM model's prefix ("h.0.attn.c_attn.weight", "wte.weight") plus causal-mask
// buffers ("h.0.attn.bias"); transformers loads it into GPT2LMHeadModel all the same.
TEST_F(FamilyConfig, BaseModelCheckpointsWithoutThePrefixLoad) {
  const std::string dir = copy_with("gpt2_tied", nlohmann::json::object());
  const safetensors::File original = safetensors::File::open(dir + "/model.safetensors");
  SafetensorsWriter w;
  for (const safetensors::TensorView& t : original.tensors()) {
    std::vector<uint8_t> bytes(t.data, t.data + (t.end - t.begin));
    w.add_raw(t.name.substr(std::string("transformer.").size()), "F32", t.shape, bytes);
    if (t.name.find(".ln_1.weight") != std::string::npos) {  // one mask buffer per layer
      const std::string layer = t.name.substr(12, t.name.find(".ln_1") - 12);
      w.add(layer + ".attn.bias", "F32", {1, 1, 2, 2}, {1, 0, 1, 1});
    }
  }
  fs::remove(dir + "/model.safetensors");
  w.write(dir + "/model.safetensors");
  const LoadedModel stripped = load_model(dir);
  const LoadedModel hf = load_model(tiny_model("gpt2_tied"));
  for (const Parameter& p : hf.model->parameters())
    EXPECT_TRUE(
        at::equal(stripped.model->parameters()[stripped.model->find(p.name)].tensor, p.tensor))
        << p.name;
}

// At max_position_embeddings: learned positions (GPT-2) stop and return what was generated;
// rotary models go on, as transformers does (dynamic rope scaling acts only past it).
TEST(FamilyGenerate, ContextLengthStopsLearnedPositionsOnly) {
  const std::vector<int64_t> prompt(60, 5);  // 60 of 64 positions
  GenerateOptions go;
  go.max_new_tokens = 10;
  EXPECT_EQ(generate(*load_model(tiny_model("gpt2_tied")).model, prompt, go).size(), 4u);
  EXPECT_EQ(generate(*load_model(tiny_model("llama_tied")).model, prompt, go).size(), 10u);
}

// Finding: attention_bias on a Llama config was read as q/k/v biases only (the Qwen2 meaning)
// and the o_proj.bias it implies was refused as an unexpected tensor.
TEST(FamilyTensors, LlamaAttentionBiasIncludesTheOutputProjection) {
  const std::string config = R"({"model_type": "llama", "vocab_size": 96, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
      "attention_bias": true})";
  std::vector<std::string> names;
  for (const auto& [name, shape] : CausalLM::expected_parameters(parse_hf_config(config, "t")))
    names.push_back(name);
  for (const char* n : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    const std::string bias = std::string("model.layers.0.self_attn.") + n + ".bias";
    EXPECT_NE(std::find(names.begin(), names.end(), bias), names.end()) << bias;
  }
  // The fixture with every bias loads (its logits are compared in test_model).
  EXPECT_NO_THROW(load_model(tiny_model("llama_all_biases")));
}

TEST(FamilyConfigParse, RopeScalingFormsAndRefusals) {
  const auto with_rope = [](const std::string& rope) {
    return R"({"model_type": "llama", "vocab_size": 96, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
      "max_position_embeddings": 64, "rope_scaling": )" +
           rope + "}";
  };
  for (const char* type : {"linear", "dynamic", "llama3"}) {
    const ModelConfig c = parse_hf_config(
        with_rope(std::string(R"({"rope_type": ")") + type +
                  R"(", "factor": 4, "low_freq_factor": 1, "high_freq_factor": 4})"),
        "t");
    ASSERT_TRUE(c.rope_scaling.has_value()) << type;
    EXPECT_EQ(c.rope_scaling->type, type);
    EXPECT_EQ(c.rope_scaling->factor, 4.0);
  }
  // The transformers 4.x key "type" and Phi-3's early name "su" for longrope.
  EXPECT_EQ(
      parse_hf_config(with_rope(R"({"type": "linear", "factor": 2})"), "t").rope_scaling->type,
      "linear");
  const ModelConfig su = parse_hf_config(
      with_rope(R"({"type": "su", "short_factor": [1,1,1,1], "long_factor": [2,2,2,2]})"), "t");
  EXPECT_EQ(su.rope_scaling->type, "longrope");
  EXPECT_NE(error_of([&] { parse_hf_config(with_rope(R"({"rope_type": "mrope"})"), "t"); })
                .find("rope type 'mrope' is not supported (default, linear, dynamic, yarn, "
                      "longrope, llama3)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_hf_config(with_rope(R"({"rope_type": "longrope", "short_factor": [1]})"), "t");
            }).find("longrope needs short_factor and long_factor"),
            std::string::npos);
  // Malformed values are refused (exit 2), not ignored or taken as absent.
  for (const auto& [rope, message] : std::vector<std::pair<std::string, std::string>>{
           {R"("linear")", "rope_scaling must be an object"},
           {R"({"rope_type": "yarn", "factor": -1})", "needs a positive factor"},
           {R"({"rope_type": "llama3", "factor": 8})",
            "needs low_freq_factor and high_freq_factor"},
           {R"({"rope_type": "longrope", "short_factor": ["a"], "long_factor": ["b"]})",
            "must hold numbers"}}) {
    EXPECT_NE(error_of([&] { parse_hf_config(with_rope(rope), "t"); }).find(message),
              std::string::npos)
        << rope;
  }
  const std::string base = R"({"model_type": "gemma2", "vocab_size": 96, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, )";
  EXPECT_NE(error_of([&] {
              parse_hf_config(base + R"("layer_types": [1, 2]})", "t");
            }).find("layer_types entries must be"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_hf_config(base + R"("eos_token_id": "2"})", "t");
            }).find("eos_token_id must be an integer or a list of integers"),
            std::string::npos);
}

TEST(FamilyConfigParse, UnsupportedArchitecturesListTheSupportedOnes) {
  const std::string msg = error_of([] { parse_hf_config(R"({"model_type": "bloom"})", "cfg"); });
  EXPECT_NE(msg.find("model_type 'bloom' is not supported (supported: llama, mistral, qwen2, "
                     "qwen3, gemma2, gemma3_text, gpt2, gpt_neox, phi3, olmo2)"),
            std::string::npos)
      << msg;
  EXPECT_NE(error_of([] {
              parse_hf_config(R"({"model_type": "gemma3"})", "cfg");
            }).find("multimodal Gemma 3"),
            std::string::npos);
}

TEST(FamilyParams, DefaultSelectionIsEveryBlockWeightButNormsInTheFamilysNames) {
  struct Case {
    const char* model;
    const char* patterns;
    const char* some_selected;
    const char* not_selected;
  };
  for (const Case& c :
       {Case{"gpt2_tied", "transformer.h.*,!*ln_*", "transformer.h.0.attn.c_attn.weight",
             "transformer.h.0.ln_1.bias"},
        Case{"pythia_parallel", "gpt_neox.layers.*,!*layernorm*",
             "gpt_neox.layers.1.attention.query_key_value.bias",
             "gpt_neox.layers.0.input_layernorm.weight"},
        Case{"gemma3_local_global", "model.layers.*,!*norm*", "model.layers.0.mlp.gate_proj.weight",
             "model.layers.0.self_attn.q_norm.weight"}}) {
    const LoadedModel m = load_model(tiny_model(c.model));
    const ParameterSelection sel = ParameterSelection::parse(*m.model, "");
    EXPECT_EQ(sel.patterns(), c.patterns) << c.model;
    EXPECT_TRUE(sel.contains(m.model->find(c.some_selected))) << c.some_selected;
    EXPECT_FALSE(sel.contains(m.model->find(c.not_selected))) << c.not_selected;
    for (const ParameterSlice& s : sel.slices()) {
      EXPECT_EQ(s.name.find("norm"), std::string::npos) << s.name;
      EXPECT_FALSE(m.model->is_embedding(s.index)) << s.name;
    }
  }
  // Position embeddings are embeddings too.
  const LoadedModel gpt2 = load_model(tiny_model("gpt2_tied"));
  EXPECT_NE(error_of([&] {
              ParameterSelection::parse(*gpt2.model, "transformer.wpe.weight");
            }).find("per-example gradients of embeddings are not supported"),
            std::string::npos);
}

// Greedy continuations equal transformers' generate(do_sample=False) (expected.json "greedy",
// which also records the smallest top-1 minus top-2 logit margin: >= 0.0085, four orders of
// magnitude above the float32 logit differences).
class FamilyGreedy : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyGreedy, IdsEqualTransformersGenerate) {
  const std::string dir = tiny_model(GetParam());
  const nlohmann::json g = read_json(dir + "/expected.json").at("greedy");
  const LoadedModel loaded = load_model(dir);
  GenerateOptions go;
  go.max_new_tokens = 8;
  go.stop_ids = stop_ids(loaded);
  EXPECT_EQ(go.stop_ids, std::vector<int64_t>{g.at("eos_token_id").get<int64_t>()});
  EXPECT_EQ(generate(*loaded.model, g.at("prompt_ids").get<std::vector<int64_t>>(), go),
            g.at("ids").get<std::vector<int64_t>>());
}

INSTANTIATE_TEST_SUITE_P(Transformers, FamilyGreedy,
                         ::testing::Values("llama_all_biases", "mistral_sliding", "qwen3_yarn",
                                           "gemma2_softcap", "gemma3_local_global", "gpt2_tied",
                                           "pythia_parallel", "neox_sequential", "phi3_longrope",
                                           "olmo2_postnorm"));

// ---- GGUF: the same tiny models as llama.cpp's own converter writes them --------------------
// tests/fixtures/models/tiny_gguf/ (tools/fixtures/make_family_gguf.py runs convert_hf_to_gguf.py
// of llama.cpp 0c1e57098): the loader must undo each family's conversion (q/k permutation of
// "llama", Gemma's norm + 1, GPT-NeoX's qkv order) and read its hyperparameters.

class GgufFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufFamily, ConverterOutputGivesTheHfWeightsAndLogits) {
  const std::string name = GetParam();
  const std::string gguf = source_dir() + "/tests/fixtures/models/tiny_gguf/" + name + ".gguf";
  const LoadedModel g = load_model(gguf);
  const LoadedModel hf = load_model(tiny_model(name));
  ASSERT_EQ(g.format, "gguf");
  const ModelConfig& gc = g.model->config();
  const ModelConfig& hc = hf.model->config();
  // Mistral is converted as "llama" (no sliding window in llama.cpp); otherwise the family.
  EXPECT_EQ(gc.architecture, name == "mistral_sliding" ? "llama" : hc.architecture);
  ASSERT_EQ(g.model->parameters().size(), hf.model->parameters().size());
  // Exact, except Gemma's norms: stored as fl(w + 1), read back as fl(stored - 1), which can lose
  // w's last bit (1 + w' == stored exactly, so the runner's multiplier is HF's).
  double worst = 0;
  for (const Parameter& p : hf.model->parameters()) {
    const int i = g.model->find(p.name);
    ASSERT_GE(i, 0) << p.name;
    worst = std::max(worst, scaled_error(g.model->parameters()[i].tensor, p.tensor));
  }
  EXPECT_LE(worst, 1.2e-7) << name;
  // Three hyperparameters that llama.cpp's converter does not store, so a GGUF cannot carry
  // them (measured in transformers: the logits change by up to 3.6, 0.76 and 6.8): mistral's
  // sliding window, Gemma 2's query_pre_attn_scalar (llama.cpp: 1/sqrt(head_dim)), and Gemma 3's
  // layer pattern (llama.cpp: every 6th layer global, so both tiny layers are local).
  if (name == "mistral_sliding") {
    EXPECT_EQ(gc.sliding_window, 0);
    return;
  }
  if (name == "gemma2_softcap") {
    EXPECT_FALSE(gc.attention_scale.has_value());
    return;
  }
  if (name == "gemma3_local_global") {
    EXPECT_TRUE(gc.layer_is_sliding(0) && gc.layer_is_sliding(1));
    return;
  }
  const safetensors::File expected =
      safetensors::File::open(tiny_model(name) + "/expected.safetensors");
  for (const std::string suffix : {"", "_left"}) {
    const at::Tensor ids = read_expected(expected, "input_ids" + suffix);
    const at::Tensor mask = read_expected(expected, "attention_mask" + suffix);
    const at::Tensor want = read_expected(expected, "logits" + suffix);
    const at::Tensor real = mask.to(at::kBool).unsqueeze(-1).expand_as(want);
    const at::Tensor got = g.model->forward(ids, mask);
    EXPECT_LE(scaled_error(got.masked_select(real), want.masked_select(real)), 1e-5)
        << name << suffix;
  }
}

INSTANTIATE_TEST_SUITE_P(LlamaCppConverter, GgufFamily,
                         ::testing::Values("llama_untied_gqa", "llama_all_biases",
                                           "mistral_sliding", "qwen2_bias", "qwen3_yarn",
                                           "gemma2_softcap", "gemma3_local_global", "gpt2_tied",
                                           "pythia_parallel", "neox_sequential", "phi3_longrope",
                                           "olmo2_postnorm"));

}  // namespace
}  // namespace npeff::model
