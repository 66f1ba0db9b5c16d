// npeff train: a small Llama-architecture classifier trained from scratch on a task (for the
// ground-truth benchmark, docs/ground-truth.md). Writes a Hugging Face model directory.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/progress.h"
#include "npeff/model/train.h"
#include "npeff/task/predict.h"

namespace npeff::cli {
namespace {

struct TrainCliOptions {
  TaskSelection sel;
  std::string tokenizer;    ///< tokenizer.json (required; copied into the model)
  model::ModelConfig arch;  ///< hidden, layers, heads, ffn, context (defaults below)
  std::uint64_t init_seed = 0;
  model::TrainOptions train;  ///< steps 1000, batch 32, lr 3e-3, seed 0
  std::string out;
  bool json = false;
};

int run_train(TrainCliOptions o, const GlobalOptions& g) {
  const c10::Device dev = select_device(g.device);
  PathCheck inputs;
  inputs.file("--tokenizer", o.tokenizer);
  o.sel.check_paths(inputs);
  inputs.throw_if_any();
  std::ifstream f(o.tokenizer, std::ios::binary);
  NPEFF_CHECK(f.good(), o.tokenizer, ": cannot open the tokenizer");
  std::stringstream text;
  text << f.rdbuf();
  const tokenizer::Tokenizer tok = tokenizer::load_hf_tokenizer_json_text(text.str(), o.tokenizer);
  o.arch.vocab_size = tok.vocab_size();
  if (o.arch.intermediate_size == 0) o.arch.intermediate_size = 2 * o.arch.hidden_size;
  NPEFF_CHECK(o.arch.num_heads > 0 && o.arch.hidden_size % o.arch.num_heads == 0, "--hidden (",
              o.arch.hidden_size, ") must be a multiple of --heads (", o.arch.num_heads, ")");
  o.arch.num_kv_heads = o.arch.num_heads;
  o.arch.head_dim = o.arch.hidden_size / o.arch.num_heads;
  o.arch.tie_word_embeddings = true;
  o.arch.validate("npeff train");
  const task::Task task = o.sel.load();
  const std::vector<task::Example> examples =
      task::load_examples(task, o.sel.start, o.sel.max_examples);
  model::CausalLM m(o.arch, model::init_parameters(o.arch, o.init_seed), "npeff train");
  if (dev.is_cuda()) m.to(dev, at::kFloat);  // initialised on the CPU: the same start everywhere
  Progress progress("train", o.train.steps, "steps", 5.0);
  double last = 0;
  const model::TrainResult r =
      model::train_classifier(m, tok, task, examples, o.train, [&](int64_t, double loss) {
        last = loss;
        progress.advance(1);
      });
  progress.finish();
  const task::Predictions p = task::predict(m, tok, task, examples, 64);
  int64_t labelled = 0, correct = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].label < 0) continue;
    ++labelled;
    correct += p.prediction[static_cast<int64_t>(i)].item<int64_t>() == examples[i].label;
  }
  m.to(at::kCPU, at::kFloat);
  model::save_hf_model(m, text.str(), o.out);
  return report_success(o.out,
                        {{"command", "train"},
                         {"output", o.out},
                         {"model", o.arch.summary()},
                         {"parameters", o.arch.parameter_count()},
                         {"examples", examples.size()},
                         {"steps", o.train.steps},
                         {"final_batch_loss", last},
                         {"loss_history", r.loss},
                         {"train_accuracy", labelled ? double(correct) / double(labelled) : 0.0},
                         {"seconds", progress.elapsed_seconds()}},
                        o.json);
}

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<TrainCliOptions>();
  o->arch.hidden_size = 64;
  o->arch.num_layers = 2;
  o->arch.num_heads = 4;
  o->arch.max_position_embeddings = 256;
  CLI::App* sub = app.add_subcommand(
      "train",
      "Train a small Llama-architecture classifier from scratch on a task (label-tokens or\n"
      "suffixes): random init, Adam on -log p(gold label | prompt) with p as predict defines it.\n"
      "For the ground-truth benchmark (docs/ground-truth.md). Writes a HF model directory\n"
      "(config.json, model.safetensors, tokenizer.json) that every subcommand loads.\n"
      "Examples:\n"
      "  npeff synth-task --classes 3 --label-prefix '' -o synth && \\\n"
      "  npeff train --task synth/task.json --tokenizer synth/tokenizer.json -o synth-model\n"
      "  npeff train --task t.json --tokenizer tok.json --hidden 96 --layers 3 --steps 2000 -o m "
      "--json");
  add_task_options(sub, o->sel);
  sub->add_option("--tokenizer,-t", o->tokenizer, "HF tokenizer.json")->required();
  sub->add_option("--hidden", o->arch.hidden_size, "Hidden size")->capture_default_str();
  sub->add_option("--layers", o->arch.num_layers, "Decoder layers")->capture_default_str();
  sub->add_option("--heads", o->arch.num_heads, "Attention heads")->capture_default_str();
  sub->add_option("--intermediate", o->arch.intermediate_size, "MLP size (0: 2 x hidden)")
      ->capture_default_str();
  sub->add_option("--context", o->arch.max_position_embeddings, "Longest sequence")
      ->capture_default_str();
  sub->add_option("--init-seed", o->init_seed, "Seed of the initial weights")
      ->capture_default_str();
  sub->add_option("--steps", o->train.steps, "Adam steps")->capture_default_str();
  sub->add_option("--batch-size", o->train.batch_size, "Examples per step")->capture_default_str();
  sub->add_option("--lr", o->train.lr, "Learning rate")->capture_default_str();
  sub->add_option("--seed", o->train.seed, "Batch-order seed")->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output model directory")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &global, &runner] { runner = [o, &global] { return run_train(*o, global); }; });
}

}  // namespace npeff::cli
