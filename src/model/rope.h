// Rotary frequencies (internal to the model runner; see rope.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include "npeff/model/config.h"

namespace npeff::model {

struct Rotary {
  at::Tensor inv_freq;            // float32 [rotary_dim / 2]
  double attention_factor = 1.0;  // cos and sin are multiplied by it (yarn, longrope)
};

// `seq_len`: the longest sequence of the batch (dynamic NTK and longrope switch on it).
Rotary rotary_frequencies(const ModelConfig& config, const RopeConfig& rope, int64_t seq_len);
bool rotary_depends_on_length(const RopeConfig& rope);

}  // namespace npeff::model
