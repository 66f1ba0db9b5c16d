// The Llama-family model against Hugging Face transformers (fixtures written by
// tools/fixtures/make_llama_fixtures.py): logits of tiny random models of every variant (tied,
// untied + GQA, Qwen2 biases, Llama-3 rope scaling, sharded bf16), batched with left and right
// padding; the same model converted to GGUF (llama.cpp's q/k permutation) and loaded back; the
// real stories260K llama2.c checkpoint; the real SmolLM2-135M GGUF when present.
#include <gtest/gtest.h>

#include "npeff/model/generate.h"
#include "npeff/model/loader.h"
#include "unit/gguf_writer.h"
#include "unit/model_fixtures.h"
#include "unit/test_util.h"

namespace npeff::model {
namespace {

using namespace npeff::testing;

// fp32 logits of two implementations of the same float32 model differ by summation order only:
// ~1e-7 relative per op, a few 1e-7 after two layers (HF eager vs sdpa differ by 3e-6 abs).
constexpr double kLogitTolerance = 1e-5;

class TinyModel : public ::testing::TestWithParam<std::string> {};

void expect_logits_match(const CausalLM& m, const safetensors::File& expected,
                         const std::string& suffix, const std::string& what) {
  const at::Tensor ids = read_expected(expected, "input_ids" + suffix);
  const at::Tensor mask = read_expected(expected, "attention_mask" + suffix);
  const at::Tensor want = read_expected(expected, "logits" + suffix);
  const at::Tensor got = m.forward(ids, mask);
  const at::Tensor real = mask.to(at::kBool).unsqueeze(-1).expand_as(want);
  const double err = scaled_error(got.masked_select(real), want.masked_select(real));
  EXPECT_LE(err, kLogitTolerance) << what << suffix;
  std::cout << "[ info ] " << what << (suffix.empty() ? " right" : " left")
            << "-padded logits: max error / max |logit| = " << err << "\n";
}

TEST_P(TinyModel, LogitsMatchTransformersWithLeftAndRightPadding) {
  const std::string dir = tiny_model(GetParam());
  const LoadedModel loaded = load_model(dir);
  EXPECT_EQ(loaded.format, "hf");
  const safetensors::File expected = safetensors::File::open(dir + "/expected.safetensors");
  expect_logits_match(*loaded.model, expected, "", GetParam());
  expect_logits_match(*loaded.model, expected, "_left", GetParam());
}

INSTANTIATE_TEST_SUITE_P(Transformers, TinyModel,
                         ::testing::Values("llama_tied", "llama_untied_gqa", "qwen2_bias",
                                           "llama3_rope", "llama_sharded", "llama_all_biases",
                                           "mistral_sliding", "qwen3_yarn", "gemma2_softcap",
                                           "gemma3_local_global", "gpt2_tied", "pythia_parallel",
                                           "neox_sequential", "phi3_longrope", "olmo2_postnorm"));

// ---- GGUF: a tiny HF model written as llama.cpp's converter would, loaded back ------------

// llama.cpp's convert_hf_to_gguf permute(): HF rotary rows -> interleaved.
at::Tensor permute_like_llama_cpp(const at::Tensor& w, int64_t heads) {
  std::vector<int64_t> shape = {heads, 2, w.size(0) / heads / 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

class GgufModel : public TempDirTest {
 protected:
  // Writes tiny/llama_untied_gqa as a GGUF file (F32 tensors, or F16 for `f16`).
  std::string write_gguf(bool f16, const std::string& bad_type_tensor = "") {
    const LoadedModel hf = load_model(tiny_model("llama_untied_gqa"));
    const ModelConfig& c = hf.model->config();
    GgufWriter w;
    w.add_string("general.architecture", "llama")
        .add_u32("llama.embedding_length", static_cast<uint32_t>(c.hidden_size))
        .add_u32("llama.block_count", static_cast<uint32_t>(c.num_layers))
        .add_u32("llama.feed_forward_length", static_cast<uint32_t>(c.intermediate_size))
        .add_u32("llama.attention.head_count", static_cast<uint32_t>(c.num_heads))
        .add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.num_kv_heads))
        .add_u32("llama.context_length", static_cast<uint32_t>(c.max_position_embeddings))
        .add_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps))
        .add_f32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
    const std::vector<std::pair<std::string, std::string>> names = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"}};
    for (const Parameter& p : hf.model->parameters()) {
      std::string g;
      for (const auto& [a, b] : names) g = p.name == a ? b : g;
      if (g.empty()) {
        const std::string rest = p.name.substr(p.name.find('.', 13) + 1);
        const std::string layer = p.name.substr(13, p.name.find('.', 13) - 13);
        static const std::map<std::string, std::string> kMap = {
            {"self_attn.q_proj.weight", "attn_q.weight"},
            {"self_attn.k_proj.weight", "attn_k.weight"},
            {"self_attn.v_proj.weight", "attn_v.weight"},
            {"self_attn.o_proj.weight", "attn_output.weight"},
            {"mlp.gate_proj.weight", "ffn_gate.weight"},
            {"mlp.up_proj.weight", "ffn_up.weight"},
            {"mlp.down_proj.weight", "ffn_down.weight"},
            {"input_layernorm.weight", "attn_norm.weight"},
            {"post_attention_layernorm.weight", "ffn_norm.weight"}};
        g = "blk." + layer + "." + kMap.at(rest);
      }
      at::Tensor t = p.tensor;
      if (p.name.find("q_proj") != std::string::npos) t = permute_like_llama_cpp(t, c.num_heads);
      if (p.name.find("k_proj") != std::string::npos) t = permute_like_llama_cpp(t, c.num_kv_heads);
      std::vector<uint64_t> ne(t.sizes().rbegin(), t.sizes().rend());  // GGUF: fastest dim first
      const bool half = f16 && t.dim() == 2;
      const at::Tensor stored = half ? t.to(at::kHalf).contiguous() : t.contiguous();
      std::vector<uint8_t> bytes(stored.nbytes());
      std::memcpy(bytes.data(), stored.data_ptr(), bytes.size());
      uint32_t type = half ? 1u : 0u;       // F16 : F32
      if (g == bad_type_tensor) type = 16;  // IQ2_XXS: a real ggml type npeff does not dequantise
      if (type == 16) bytes.resize(static_cast<size_t>(t.numel()) / 256 * 66);
      w.add_tensor(g, ne, type, bytes);
    }
    w.write(path("m.gguf"));
    return path("m.gguf");
  }
};

TEST_F(GgufModel, F32GgufGivesTheTransformersLogits) {
  const LoadedModel loaded = load_model(write_gguf(false));
  EXPECT_EQ(loaded.format, "gguf");
  const safetensors::File expected =
      safetensors::File::open(tiny_model("llama_untied_gqa") + "/expected.safetensors");
  expect_logits_match(*loaded.model, expected, "", "gguf f32");
}

TEST_F(GgufModel, F16GgufIsCloseToTheFloat32Model) {
  const LoadedModel loaded = load_model(write_gguf(true));
  const safetensors::File expected =
      safetensors::File::open(tiny_model("llama_untied_gqa") + "/expected.safetensors");
  const at::Tensor ids = read_expected(expected, "input_ids");
  const at::Tensor mask = read_expected(expected, "attention_mask");
  // fp16 weights: relative rounding 2^-11 per weight, so ~1e-3 on logits.
  const at::Tensor got = loaded.model->forward(ids, mask).select(0, 0);
  EXPECT_LE(scaled_error(got, read_expected(expected, "logits").select(0, 0)), 5e-3);
}

TEST_F(GgufModel, UnsupportedQuantisationIsRefused) {
  const std::string p = write_gguf(false, "blk.0.ffn_up.weight");
  expect_error([&] { load_model(p); }, {"blk.0.ffn_up.weight", "IQ2_XXS"});
}

// ---- load_model_tokenizer: the tokenizer load_model would attach, without the weights -------

TEST_F(GgufModel, ModelTokenizerFoundWhereLoadModelFindsIt) {
  // HF directory: tokenizer.json beside config.json, else none.
  EXPECT_EQ(load_model_tokenizer(tiny_model("llama_tied")), nullptr);
  std::filesystem::create_directories(path("hf"));
  std::filesystem::copy_file(tiny_model("llama_tied") + "/config.json", path("hf/config.json"));
  const std::string tok_json =
      source_dir() + "/tests/fixtures/tokenizers/bytelevel_gpt2/tokenizer.json";
  std::filesystem::copy_file(tok_json, path("hf/tokenizer.json"));
  const auto hf = load_model_tokenizer(path("hf"));
  ASSERT_NE(hf, nullptr);
  EXPECT_EQ(hf->vocab_size(), tokenizer::load_tokenizer(tok_json).vocab_size());
  // GGUF: only with tokenizer.ggml.* metadata.
  EXPECT_EQ(load_model_tokenizer(write_gguf(false)), nullptr);
  const std::string vocab_gguf = source_dir() + "/tests/fixtures/tokenizers/spm/vocab.gguf";
  const auto gguf = load_model_tokenizer(vocab_gguf);
  ASSERT_NE(gguf, nullptr);
  EXPECT_EQ(gguf->vocab_size(), tokenizer::load_gguf_tokenizer(vocab_gguf).vocab_size());
  // An explicit tokenizer wins; a missing model is an error.
  EXPECT_NE(load_model_tokenizer(tiny_model("llama_tied"), tok_json), nullptr);
  expect_error([&] { load_model_tokenizer(path("none")); }, {"does not exist"});
}

TEST(Stories260K, ModelTokenizerIsTheLoadersOne) {
  const std::string model = shared_dir() + "/models/stories260K/stories260K.bin";
  if (!path_exists(model)) GTEST_SKIP() << "../shared absent: " << model;
  const auto tok = load_model_tokenizer(model);
  ASSERT_NE(tok, nullptr);
  const LoadedModel loaded = load_model(model);
  EXPECT_EQ(tok->vocab_size(), loaded.tokenizer->vocab_size());
  for (int32_t id : {1, 2, 100, 313, 410, 511})
    EXPECT_EQ(tok->decode({id}), loaded.tokenizer->decode({id})) << id;
}

// ---- llama2.c: the real stories260K -----------------------------------------------------------

TEST(Stories260K, LogitsAndGreedyStoryMatchTransformers) {
  const std::string model = shared_dir() + "/models/stories260K/stories260K.bin";
  if (!path_exists(model)) GTEST_SKIP() << "../shared absent: " << model;
  const LoadedModel loaded = load_model(model);
  ASSERT_TRUE(loaded.tokenizer);
  const nlohmann::json fx =
      read_json(source_dir() + "/tests/fixtures/models/llama2c_story_greedy.json");
  const std::vector<int64_t> ids = fx["ids"].get<std::vector<int64_t>>();
  const at::Tensor first =
      at::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 4)).view({1, 4});
  std::vector<float> flat;
  for (const auto& row : fx["logits_first_positions"]) {
    for (const auto& v : row) flat.push_back(v.get<float>());
  }
  const at::Tensor expected = at::tensor(flat).view({4, -1});
  const at::Tensor got = loaded.model->forward(first, at::ones_like(first))[0];
  // The fixture keeps 6 significant digits.
  EXPECT_LE(scaled_error(got, expected), 2e-5);
  GenerateOptions go;
  go.max_new_tokens = static_cast<int64_t>(ids.size()) - 1;
  go.stop_ids = {1};
  const std::vector<int64_t> out = generate(*loaded.model, {1}, go);
  EXPECT_EQ(out, std::vector<int64_t>(ids.begin() + 1, ids.end()));
  std::vector<int32_t> all = {1};
  all.insert(all.end(), out.begin(), out.end());
  EXPECT_EQ(
      loaded.tokenizer->decode(all, tokenizer::DecodeOptions{true})
          .rfind("Once upon a time, there was a little girl named Lily. She loved to play outside "
                 "in the park",
                 0),
      0u);
}

// ---- The real SmolLM2-135M (GGUF, Q4_1) -------------------------------------------------------

// A real checkpoint against transformers reading the same file (fixture JSON written by
// tools/fixtures/make_{llama,gemma3}_fixtures.py): prompt ids, next-token log-probs at the top
// and at random ids, and greedy continuations. Both sides dequantise the same weights exactly;
// the difference is float32 summation order over the layers (transformers' own fp32 vs fp64
// differ by <= 1.7e-5 on both models): 1e-3 leaves a wide margin and is far below what a wrong
// rotary base or norm gives (> 0.1).
void expect_matches_reference(const LoadedModel& loaded, const std::string& fixture) {
  const nlohmann::json fx = read_json(source_dir() + "/tests/fixtures/models/" + fixture);
  const auto random_ids = fx["random_ids"].get<std::vector<int64_t>>();
  for (const nlohmann::json& p : fx["prompts"]) {
    const auto ids32 = loaded.tokenizer->encode(p["text"].get<std::string>());
    const std::vector<int64_t> ids(ids32.begin(), ids32.end());
    ASSERT_EQ(ids, p["ids"].get<std::vector<int64_t>>()) << p["text"];
    const at::Tensor in = at::tensor(ids).view({1, -1});
    const at::Tensor logits = loaded.model->forward(in, at::ones_like(in))[0][in.size(1) - 1];
    const at::Tensor lp = at::log_softmax(logits.to(at::kDouble), -1);
    const auto top = p["top_ids"].get<std::vector<int64_t>>();
    const auto top_lp = p["top_logprobs"].get<std::vector<double>>();
    double worst = 0;
    for (size_t i = 0; i < top.size(); ++i)
      worst = std::max(worst, std::abs(lp[top[i]].item<double>() - top_lp[i]));
    const auto rnd_lp = p["random_logprobs"].get<std::vector<double>>();
    for (size_t i = 0; i < random_ids.size(); ++i)
      worst = std::max(worst, std::abs(lp[random_ids[i]].item<double>() - rnd_lp[i]));
    EXPECT_LE(worst, 1e-3) << p["text"];
    std::cout << "[ info ] " << nlohmann::json(p["text"]).dump()
              << ": max |log p - reference| = " << worst << "\n";
    GenerateOptions go;
    go.max_new_tokens = static_cast<int64_t>(p["greedy_ids"].size());
    EXPECT_EQ(generate(*loaded.model, ids, go), p["greedy_ids"].get<std::vector<int64_t>>())
        << p["text"];
  }
}

TEST(SmolLM2, NextTokenLogProbsAndGreedyTextMatchTransformers) {
  const std::string gguf = smollm2_gguf();
  if (!path_exists(gguf))
    GTEST_SKIP() << "SmolLM2 GGUF not found (tools/get-smollm2.sh fetches it; tools/run-tests.sh "
                    "runs that): "
                 << gguf;
  expect_matches_reference(load_model(gguf), "smollm2_reference.json");
}

// ---- The real Gemma 3 270M (GGUF, Q4_K_M) ----------------------------------------------------

// tools/get-gemma3.sh's file: NPEFF_GEMMA3_GGUF, else ${NPEFF_CACHE:-~/.cache/npeff}/gemma3.
std::string gemma3_gguf() {
  if (const char* s = std::getenv("NPEFF_GEMMA3_GGUF")) return s;
  const char* cache = std::getenv("NPEFF_CACHE");
  const char* home = std::getenv("HOME");
  const std::string root = cache != nullptr && *cache != '\0' ? std::string(cache)
                           : home != nullptr                  ? std::string(home) + "/.cache/npeff"
                                                              : std::string(".");
  return root + "/gemma3/gemma-3-270m-q4_k_m.gguf";
}

TEST(Gemma3, NextTokenLogProbsAndGreedyTextMatchTransformers) {
  const std::string gguf = gemma3_gguf();
  if (!path_exists(gguf))
    GTEST_SKIP() << "Gemma 3 GGUF not found (tools/get-gemma3.sh fetches it; tools/run-tests.sh "
                    "runs that): "
                 << gguf;
  const LoadedModel loaded = load_model(gguf);
  EXPECT_EQ(loaded.model->config().architecture, "gemma3");
  expect_matches_reference(loaded, "gemma3_reference.json");
  // USER_DEFINED tokens (whitespace runs, "\n", HTML tags) are text, not special: decoding with
  // skip-special keeps them, as transformers (same GGUF) and llama.cpp do.
  const tokenizer::DecodeOptions skip{true};
  EXPECT_EQ(loaded.tokenizer->decode({9259, 138, 236765, 4010, 671}, skip), "Hello  w\xC3\xB6rld");
  const std::string lines = "Three fruits:\n1. Apple\n2.";
  EXPECT_EQ(loaded.tokenizer->decode(loaded.tokenizer->encode(lines), skip), lines);
}

}  // namespace
}  // namespace npeff::model
