#include "npeff/model/generate.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>

#include "npeff/core/error.h"
#include "npeff/core/log.h"

namespace npeff::model {

std::vector<int64_t> generate(const CausalLM& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options,
                              const std::function<void(int64_t)>& on_token) {
  NPEFF_CHECK(!prompt.empty(), "generate: the prompt has no tokens (add a BOS token)");
  NPEFF_CHECK(options.greedy || options.temperature > 0, "generate: temperature must be > 0");
  torch::autograd::AutoGradMode no_grad(false);
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  std::vector<int64_t> seq = prompt, out;
  const int64_t limit = model.config().max_position_embeddings;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    // Learned positions end at the context length: stop there and return what was generated.
    // Rotary models go on past it, as transformers does (with dynamic rope scaling, that is
    // where it starts to act).
    if (static_cast<int64_t>(seq.size()) >= limit) {
      if (model.config().learned_positions) {
        log::warn("generate: stopped at the model's context length (", limit,
                  " learned positions) after ", out.size(), " new tokens");
        break;
      }
      if (static_cast<int64_t>(seq.size()) == limit)
        log::warn("generate: going past the model's max_position_embeddings (", limit,
                  "); quality may drop unless its rope scaling covers it");
    }
    const at::Tensor ids = at::tensor(seq, at::kLong).view({1, -1});
    const at::Tensor logits = model.forward(ids, at::ones_like(ids)).select(1, ids.size(1) - 1)[0];
    int64_t next = 0;
    if (options.greedy) {
      next = logits.argmax().item<int64_t>();
    } else {
      const at::Tensor probs = at::softmax(logits.cpu() / options.temperature, -1);
      next = at::multinomial(probs, 1, false, gen).item<int64_t>();
    }
    seq.push_back(next);
    out.push_back(next);
    if (on_token) on_token(next);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end())
      break;
  }
  return out;
}

std::vector<int64_t> stop_ids(const LoadedModel& loaded) {
  std::vector<int64_t> ids;
  const auto add = [&](int64_t id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (loaded.tokenizer && loaded.tokenizer->eos_id()) add(*loaded.tokenizer->eos_id());
  for (int64_t id : loaded.model->config().eos_token_ids) add(id);
  if (loaded.format == "llama2c" && loaded.tokenizer && loaded.tokenizer->bos_id())
    add(*loaded.tokenizer->bos_id());
  return ids;
}

}  // namespace npeff::model
