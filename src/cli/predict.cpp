// npeff predict: zero-shot predictions and accuracy of a task (configs/tasks/*.json), checked
// before paying for PEFs; writes per-example p over labels (npeff.predictions).
#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/progress.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"
#include "npeff/model/loader.h"
#include "npeff/task/predict.h"

namespace npeff::cli {
namespace {

struct PredictOptions {
  std::string model;      ///< HF directory, GGUF file or llama2.c .bin (required)
  std::string tokenizer;  ///< overrides the model's tokenizer
  TaskSelection sel;      ///< --task, --data, --split, --start, --max-examples
  int64_t batch_size = 16;
  std::string out;  ///< npeff.predictions HDF5 file (optional)
  bool json = false;
};

int run_predict(const PredictOptions& o, const GlobalOptions& g) {
  PathCheck inputs;  // every input at once, before loading anything
  check_model_paths(inputs, o.model, o.tokenizer);
  o.sel.check_paths(inputs);
  inputs.throw_if_any();
  const task::Task task = o.sel.load();
  const std::vector<task::Example> examples =
      task::load_examples(task, o.sel.start, o.sel.max_examples);
  model::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  lo.require_tokenizer = true;
  model::LoadedModel loaded = model::load_model(o.model, lo);
  const c10::Device dev = select_device(g.device);
  if (dev.is_cuda()) loaded.model->to(dev, at::kFloat);
  Progress progress("predict", static_cast<int64_t>(examples.size()), "examples");
  int64_t reported = 0;
  const task::Predictions p = task::predict(*loaded.model, *loaded.tokenizer, task, examples,
                                            o.batch_size, [&](int64_t done) {
                                              progress.advance(done - reported);
                                              reported = done;
                                            });
  progress.finish();

  const int64_t m = static_cast<int64_t>(examples.size());
  std::vector<int64_t> ids, gold;
  int64_t labelled = 0, correct = 0;
  for (int64_t i = 0; i < m; ++i) {
    ids.push_back(examples[i].id);
    gold.push_back(examples[i].label);
    if (examples[i].label >= 0) {
      ++labelled;
      correct += p.prediction[i].item<int64_t>() == examples[i].label;
    }
  }
  nlohmann::json summary = {
      {"command", "predict"}, {"task", task.name}, {"kind", task::task_kind_name(task.kind)},
      {"model", o.model},     {"examples", m},     {"labelled", labelled}};
  if (labelled > 0)
    summary["accuracy"] = static_cast<double>(correct) / static_cast<double>(labelled);
  if (task.kind != task::TaskKind::kVocab) {
    std::vector<int64_t> counts(task.labels.size(), 0);
    for (int64_t i = 0; i < m; ++i) ++counts[p.prediction[i].item<int64_t>()];
    nlohmann::json c = nlohmann::json::object();
    for (size_t l = 0; l < counts.size(); ++l) c[task.labels[l]] = counts[l];
    summary["predicted_counts"] = c;
  }
  if (!o.out.empty()) {
    io::File file = io::File::create(o.out);
    io::write_header(file, {task::kPredictionsSchema, task::kPredictionsSchemaVersion},
                     {{"command", "predict"},
                      {"model", o.model},
                      {"tokenizer", o.tokenizer},
                      {"task", nlohmann::json::parse(task.to_json())},
                      {"start", o.sel.start},
                      {"max_examples", o.sel.max_examples},
                      {"batch_size", o.batch_size}});
    const at::Tensor probs = p.probs.contiguous();
    file.root()
        .create_dataset("probs", io::DType::kFloat32, {m, probs.size(1)})
        .write(probs.data_ptr<float>());
    const at::Tensor pred = p.prediction.to(at::kLong).contiguous();
    file.root()
        .create_dataset("prediction", io::DType::kInt64, {m})
        .write(pred.data_ptr<int64_t>());
    file.root().create_dataset("example_ids", io::DType::kInt64, {m}).write(ids.data());
    file.root().create_dataset("labels", io::DType::kInt64, {m}).write(gold.data());
    if (p.top_ids.defined()) {
      const at::Tensor top = p.top_ids.contiguous();
      file.root()
          .create_dataset("top_ids", io::DType::kInt64, {m, top.size(1)})
          .write(top.data_ptr<int64_t>());
    }
    std::vector<std::string> prompts;
    for (const auto& e : examples) prompts.push_back(e.prompt);
    file.root().create_strings("prompts", prompts);
    if (task.kind != task::TaskKind::kVocab && !task.labels.empty())
      file.root().create_strings("label_names", task.labels);
    if (labelled > 0) file.root().set_attr("accuracy", summary["accuracy"].get<double>());
    file.commit();
    summary["output"] = o.out;
  }
  if (o.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << task.name << ": " << m << " examples";
    if (labelled > 0)
      std::cout << ", accuracy " << summary["accuracy"].get<double>() << " (" << correct << "/"
                << labelled << ")";
    std::cout << "\n";
    if (summary.contains("predicted_counts"))
      std::cout << "predicted: " << summary["predicted_counts"].dump() << "\n";
    if (!o.out.empty()) std::cout << o.out << "\n";
  }
  return 0;
}

}  // namespace

void add_predict_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* sub = app.add_subcommand(
      "predict",
      "Zero-shot predictions of a task (configs/tasks/*.json) with a model: accuracy, predicted "
      "label counts, and optionally per-example p over labels (--out, schema npeff.predictions).\n"
      "Examples:\n"
      "  npeff predict --model SmolLM2-135M-Instruct.Q4_1.gguf --task configs/tasks/sst2.json\n"
      "  npeff predict -m model_dir --task configs/tasks/clinc150.json --max-examples 200 --out "
      "p.h5 --json");
  add_model_options(sub, o->model, o->tokenizer);
  add_task_options(sub, o->sel);
  sub->add_option("--batch-size", o->batch_size, "Examples per forward pass")
      ->capture_default_str();
  sub->add_option("--out,-o", o->out, "Write per-example predictions (HDF5)");
  sub->add_flag("--json", o->json, "Print a JSON summary");
  sub->callback(
      [o, &global, &runner] { runner = [o, &global] { return run_predict(*o, global); }; });
}

}  // namespace npeff::cli
