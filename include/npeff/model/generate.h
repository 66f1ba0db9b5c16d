// Autoregressive generation for smoke-testing checkpoints (no KV cache: every step reruns the
// whole sequence, which is plenty for tens of tokens on the models npeff targets).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "npeff/model/llama.h"

namespace npeff::model {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  bool greedy = true;  // argmax; otherwise sampling at `temperature`
  double temperature = 1.0;
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;  // generation ends after producing one of these
};

// Returns the new ids (prompt excluded). `on_token` (optional) sees each id as it is produced.
std::vector<int64_t> generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options,
                              const std::function<void(int64_t)>& on_token = nullptr);

}  // namespace npeff::model
