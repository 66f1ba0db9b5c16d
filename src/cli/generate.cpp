// npeff generate: greedy or sampled continuation of a prompt, for smoke-testing a checkpoint.
#include <algorithm>
#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/model/generate.h"
#include "npeff/model/loader.h"

namespace npeff::cli {
namespace {

struct GenerateCliOptions {
  std::string model;      ///< HF directory, GGUF file or llama2.c .bin (required)
  std::string tokenizer;  ///< overrides the tokenizer found with the model
  std::string prompt;     ///< text; "" starts from BOS alone
  int64_t max_new_tokens = 64;
  bool greedy = false;  ///< argmax decoding (default: sampling at --temperature)
  double temperature = 1.0;
  uint64_t seed = 0;
  bool json = false;
};

int run_generate(const GenerateCliOptions& o, const GlobalOptions& g) {
  NPEFF_CHECK(o.max_new_tokens >= 0, "--max-new-tokens must be >= 0");
  PathCheck inputs;
  check_model_paths(inputs, o.model, o.tokenizer);
  inputs.throw_if_any();
  model::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  lo.require_tokenizer = true;
  model::LoadedModel loaded = model::load_model(o.model, lo);
  const c10::Device dev = select_device(g.device);
  if (dev.is_cuda()) loaded.model->to(dev, at::kFloat);
  const tokenizer::Tokenizer& tok = *loaded.tokenizer;
  std::vector<int32_t> ids32 = tok.encode(o.prompt);  // with BOS when the tokenizer adds one
  if (ids32.empty() && tok.bos_id()) ids32.push_back(*tok.bos_id());
  std::vector<int64_t> prompt(ids32.begin(), ids32.end());
  model::GenerateOptions go;
  go.max_new_tokens = o.max_new_tokens;
  go.greedy = o.greedy;
  go.temperature = o.temperature;
  go.seed = o.seed;
  go.stop_ids = model::stop_ids(loaded);
  if (!o.json) std::cout << o.prompt << std::flush;
  tokenizer::TextStream stream(tok, ids32, tokenizer::DecodeOptions{true});
  const std::vector<int64_t> out = model::generate(*loaded.model, prompt, go, [&](int64_t id) {
    // Padded vocabularies (Pythia, OLMo 2, Phi-3, Qwen): an id past the tokenizer's has no
    // text; transformers decodes it as nothing.
    if (id >= tok.vocab_size()) return;
    const std::string piece = stream.push(static_cast<int32_t>(id));
    if (!o.json && !piece.empty()) std::cout << piece << std::flush;
  });
  const std::string text = stream.text();
  if (!o.json) {
    std::cout << stream.finish() << "\n";
    return 0;
  }
  nlohmann::json summary = {{"model", o.model},     {"format", loaded.format}, {"prompt", o.prompt},
                            {"prompt_ids", prompt}, {"new_ids", out},          {"text", text},
                            {"greedy", o.greedy},   {"seed", o.seed}};
  std::cout << summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<GenerateCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "generate",
      "Continue a prompt with a model (smoke test of a checkpoint and its tokenizer).\n"
      "Examples:\n"
      "  npeff generate --model stories260K.bin --tokenizer tok512.bin --prompt '' "
      "--max-new-tokens 40 --greedy\n"
      "  npeff generate --model SmolLM2-135M-Instruct.Q4_1.gguf --prompt 'The capital of France "
      "is' "
      "--greedy --json");
  add_model_options(sub, o->model, o->tokenizer);
  sub->add_option("--prompt", o->prompt, "Prompt text ('' = start from BOS)");
  sub->add_option("--max-new-tokens,-n", o->max_new_tokens, "Tokens to generate")
      ->capture_default_str();
  sub->add_flag("--greedy", o->greedy, "Argmax decoding (default: sampling)");
  sub->add_option("--temperature", o->temperature, "Sampling temperature")->capture_default_str();
  sub->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
  sub->add_flag("--json", o->json, "Print a JSON summary instead of streaming text");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_generate(*o, global); }; });
}

}  // namespace npeff::cli
