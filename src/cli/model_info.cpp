// npeff model-info: what a checkpoint is (architecture, sizes, parameter counts), which
// parameters --params selects, and its tokenizer.
#include <cmath>
#include <iostream>

#include "cli/subcommands.h"
#include "npeff/model/loader.h"
#include "npeff/model/per_example_grad.h"

namespace npeff::cli {
namespace {

struct ModelInfoOptions {
  std::string model;      ///< HF directory, GGUF file or llama2.c .bin (required)
  std::string tokenizer;  ///< overrides the tokenizer found with the model
  std::string params;     ///< parameter selection (default: the family's)
  bool list = false;      ///< list every parameter with its shape and selection
  bool json = false;
};

int run_model_info(const ModelInfoOptions& o) {
  model::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  const model::LoadedModel loaded = model::load_model(o.model, lo);
  const model::ModelConfig& c = loaded.model->config();
  const auto selection = model::ParameterSelection::parse(*loaded.model, o.params);
  nlohmann::json j = {
      {"model", o.model},
      {"format", loaded.format},
      {"tensors", loaded.details},
      {"architecture", c.architecture},
      {"summary", c.summary()},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_layers", c.num_layers},
      {"num_heads", c.num_heads},
      {"num_kv_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
      {"norm_eps", c.rms_norm_eps},
      {"norm", c.norm == model::NormKind::kLayerNorm ? "layernorm"
               : c.norm_unit_offset                  ? "rmsnorm (1 + w)"
                                                     : "rmsnorm"},
      {"activation", c.activation == model::Activation::kSilu       ? "silu"
                     : c.activation == model::Activation::kGeluTanh ? "gelu_tanh"
                                                                    : "gelu"},
      {"positions", c.learned_positions ? "learned" : "rotary"},
      {"rope_theta", c.learned_positions ? nlohmann::json() : nlohmann::json(c.rope_theta)},
      {"rotary_dim", c.learned_positions ? nlohmann::json() : nlohmann::json(c.rotary_dim())},
      {"parallel_residual", c.parallel_residual},
      {"post_norms", c.post_norms},
      {"attention_scale",
       c.attention_scale.value_or(1.0 / std::sqrt(static_cast<double>(c.head_dim)))},
      {"attn_logit_softcap", c.attn_logit_softcap},
      {"final_logit_softcap", c.final_logit_softcap},
      {"o_bias", c.o_bias},
      {"mlp_bias", c.mlp_bias},
      {"rope_scaling", c.rope_scaling ? nlohmann::json(c.rope_scaling->type) : nlohmann::json()},
      {"sliding_window", c.sliding_window},
      {"eos_token_ids", c.eos_token_ids},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"attention_bias", c.attention_bias},
      {"parameters", c.parameter_count()},
      {"params", selection.patterns()},
      {"selected_parameters", selection.total()},
      {"selected_tensors", selection.slices().size()},
      {"tokenizer", loaded.tokenizer ? loaded.tokenizer->description() : "none"},
  };
  if (o.list) {
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < loaded.model->parameters().size(); ++i) {
      const auto& p = loaded.model->parameters()[i];
      list.push_back({{"name", p.name},
                      {"shape", p.tensor.sizes().vec()},
                      {"selected", selection.contains(static_cast<int>(i))}});
    }
    j["parameter_list"] = list;
  }
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << o.model << " (" << loaded.format << ", " << loaded.details << ")\n  " << c.summary()
            << "\n  parameters: " << c.parameter_count() << "\n  selected by '"
            << selection.patterns() << "': " << selection.total() << " in "
            << selection.slices().size() << " tensors\n"
            << "  tokenizer: " << (loaded.tokenizer ? loaded.tokenizer->description() : "none")
            << "\n";
  if (o.list) {
    for (size_t i = 0; i < loaded.model->parameters().size(); ++i) {
      const auto& p = loaded.model->parameters()[i];
      std::cout << (selection.contains(static_cast<int>(i)) ? "  * " : "    ") << p.name << " "
                << p.tensor.sizes() << "\n";
    }
  }
  return 0;
}

}  // namespace

void add_model_info_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<ModelInfoOptions>();
  CLI::App* sub = app.add_subcommand(
      "model-info",
      "Describe a checkpoint: format, architecture, parameter counts, the parameters --params "
      "selects for per-example gradients, and its tokenizer.\n"
      "--params: comma-separated globs over HF names, '!' excludes; default: the family's every "
      "block weight but norms (Llama-layout: '" +
          std::string(model::ParameterSelection::kDefault) +
          "', GPT-2: 'transformer.h.*,!*ln_*'; embeddings and lm_head excluded, paper Sec. "
          "3.1).\n"
          "Examples:\n"
          "  npeff model-info --model SmolLM2-135M-Instruct.Q4_1.gguf\n"
          "  npeff model-info --model model_dir --params 'model.layers.2[89].mlp.*' --list --json");
  add_model_options(sub, o->model, o->tokenizer);
  sub->add_option("--params", o->params, "Parameter selection patterns");
  sub->add_flag("--list", o->list, "List every parameter and whether it is selected");
  sub->add_flag("--json", o->json, "Print a JSON summary");
  sub->callback([o, &runner] { runner = [o] { return run_model_info(*o); }; });
}

}  // namespace npeff::cli
