// Autoregressive generation for smoke-testing checkpoints (no KV cache: every step reruns the
// whole sequence, which is plenty for tens of tokens on the models npeff targets).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "npeff/model/causal_lm.h"
#include "npeff/model/loader.h"

namespace npeff::model {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  bool greedy = true;  // argmax; otherwise sampling at `temperature`
  double temperature = 1.0;
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;  // generation ends after producing one of these
};

// Returns the new ids (prompt excluded). `on_token` (optional) sees each id as it is produced.
std::vector<int64_t> generate(const CausalLM& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options,
                              const std::function<void(int64_t)>& on_token = nullptr);

// The ids generation stops at, as the checkpoint's reference tool stops: the tokenizer's EOS,
// every eos_token_id of config.json / generation_config.json (transformers; generation_config
// wins when it has one), GGUF eos/eot/eom ids (llama.cpp), and BOS for llama2.c (run.c).
std::vector<int64_t> stop_ids(const LoadedModel& loaded);

}  // namespace npeff::model
