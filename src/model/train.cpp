#include "npeff/model/train.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (no longer via ATen.h in torch 2.11)
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "npeff/core/error.h"
#include "npeff/io/text_output.h"
#include "npeff/task/predict.h"
#include "npeff/task/task_batch.h"

namespace npeff::model {
namespace {

// safetensors: u64 header length, JSON header (names -> dtype, shape, data_offsets), data.
std::string safetensors_bytes(const std::vector<Parameter>& params) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const Parameter& p : params) {
    const at::Tensor t = p.tensor.detach().to(at::kFloat).cpu().contiguous();
    const size_t begin = data.size(), bytes = static_cast<size_t>(t.numel()) * sizeof(float);
    data.append(reinterpret_cast<const char*>(t.data_ptr<float>()), bytes);
    header[p.name] = {{"dtype", "F32"},
                      {"shape", std::vector<int64_t>(t.sizes().begin(), t.sizes().end())},
                      {"data_offsets", {begin, begin + bytes}}};
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const auto n = static_cast<uint64_t>(h.size());
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + h + data;
}

}  // namespace

std::vector<Parameter> init_parameters(const ModelConfig& config, std::uint64_t seed, double std) {
  config.validate("model config");
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, static_cast<float>(std));
  std::vector<Parameter> out;
  for (const auto& [name, shape] : CausalLM::expected_parameters(config)) {
    at::Tensor t = at::empty(shape, at::kFloat);
    const bool norm = name.find("norm") != std::string::npos;
    const bool bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    float* p = t.data_ptr<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = norm ? 1.0f : bias ? 0.0f : normal(rng);
    out.push_back({name, t});
  }
  return out;
}

TrainResult train_classifier(CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                             const task::Task& task, const std::vector<task::Example>& examples,
                             const TrainOptions& o,
                             const std::function<void(std::int64_t, double)>& on_step) {
  NPEFF_CHECK(task.kind != task::TaskKind::kVocab, "train needs a task with a label set");
  NPEFF_CHECK(o.steps >= 1 && o.batch_size >= 1 && o.lr > 0,
              "--steps and --batch-size must be >= 1 and --lr > 0");
  std::vector<task::Example> train;
  for (const auto& e : examples)
    if (e.label >= 0) train.push_back(e);
  NPEFF_CHECK(!train.empty(), "the training data has no labelled example");
  const auto labels = task::label_token_ids(task, tokenizer);
  const std::vector<Parameter>& params = model.parameters();
  for (const Parameter& p : params) p.tensor.requires_grad_(true);
  std::vector<at::Tensor> m1, m2;
  for (const Parameter& p : params) {
    m1.push_back(at::zeros_like(p.tensor));
    m2.push_back(at::zeros_like(p.tensor));
  }
  std::mt19937_64 rng(o.seed);
  std::vector<size_t> order(train.size());
  std::iota(order.begin(), order.end(), 0);
  size_t cursor = order.size();
  const int64_t B = std::min<int64_t>(o.batch_size, static_cast<int64_t>(train.size()));
  const int64_t warmup = std::max<int64_t>(1, o.steps / 20);
  TrainResult r;
  double loss_sum = 0, acc_sum = 0;
  int64_t since = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    std::vector<task::Example> batch;
    for (int64_t b = 0; b < B; ++b) {
      if (cursor == order.size()) std::shuffle(order.begin(), order.end(), rng), cursor = 0;
      batch.push_back(train[order[cursor++]]);
    }
    const task::TaskBatch tb = task::make_task_batch(task, tokenizer, labels, batch,
                                                     model.config().max_position_embeddings);
    const ModelOutputs outputs(model,
                               model.forward_hidden(tb.batch.input_ids, tb.batch.attention_mask,
                                                    nullptr, tb.batch.layout_or_null()),
                               nullptr);
    const at::Tensor logp = task::class_log_probs(task, labels, tb, outputs);  // [B, L]
    std::vector<int64_t> gold;
    for (const auto& e : batch) gold.push_back(e.label);
    const at::Tensor target = at::tensor(gold, at::kLong).to(logp.device());
    const at::Tensor loss = -logp.gather(1, target.view({-1, 1})).mean();
    loss.backward();
    {
      at::NoGradGuard no_grad;
      double norm2 = 0;
      for (const Parameter& p : params)
        if (p.tensor.grad().defined()) norm2 += p.tensor.grad().pow(2).sum().item<double>();
      const double scale =
          o.clip_norm > 0 && std::sqrt(norm2) > o.clip_norm ? o.clip_norm / std::sqrt(norm2) : 1.0;
      const double lr =
          o.lr * std::min(1.0, static_cast<double>(step) / static_cast<double>(warmup));
      const double c1 = 1 - std::pow(0.9, static_cast<double>(step));
      const double c2 = 1 - std::pow(0.999, static_cast<double>(step));
      for (size_t i = 0; i < params.size(); ++i) {
        const at::Tensor& p = params[i].tensor;
        if (!p.grad().defined()) continue;
        const at::Tensor g = p.grad() * scale;
        m1[i].mul_(0.9).add_(g, 0.1);
        m2[i].mul_(0.999).addcmul_(g, g, 0.001);
        p.sub_((m1[i] / c1) / ((m2[i] / c2).sqrt() + 1e-8) * lr);
        p.mutable_grad().reset();
      }
    }
    const double l = loss.item<double>();
    NPEFF_CHECK_DIVERGED(std::isfinite(l), "train diverged at step ", step, ": loss ", l,
                         " with --lr ", o.lr, ". Rerun with a smaller --lr (e.g. ", o.lr / 10, ")");
    loss_sum += l;
    acc_sum += logp.argmax(1).eq(target).to(at::kDouble).mean().item<double>();
    ++since;
    if (step % 50 == 0 || step == o.steps) {
      r.steps.push_back(step);
      r.loss.push_back(loss_sum / static_cast<double>(since));
      r.accuracy.push_back(acc_sum / static_cast<double>(since));
      loss_sum = acc_sum = 0;
      since = 0;
    }
    if (on_step) on_step(step, l);
  }
  for (const Parameter& p : params) p.tensor.requires_grad_(false);
  return r;
}

void save_hf_model(const CausalLM& model, const std::string& tokenizer_json,
                   const std::string& dir) {
  const ModelConfig& c = model.config();
  nlohmann::json config = {
      {"architectures", {c.architecture == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
      {"model_type", c.architecture},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"attention_bias", c.attention_bias},
      {"hidden_act", "silu"},
      {"torch_dtype", "float32"}};
  const std::string tmp = io::begin_folder(dir);
  io::write_file(tmp + "/config.json", config.dump(2) + "\n");
  io::write_file(tmp + "/model.safetensors", safetensors_bytes(model.parameters()));
  io::write_file(tmp + "/tokenizer.json", tokenizer_json);
  io::commit_folder(tmp, dir);
}

}  // namespace npeff::model
