// Per-example, per-objective gradients for a batch (the engine behind compute-pefs).
//
// One batched forward pass records, for every selected linear map and norm, its input X and
// output Y; then one batched backward pass per objective j gives dY_j. The per-example gradient
// of a weight is sum over tokens of dY_j[b]^T X[b] (bias: sum of dY_j[b]; norm weight: sum of
// dY_j[b] * normalised input), summed over the rows of an example's group. Nothing of size
// examples x objectives x (all selected parameters) is ever held: gradients are handed to the
// consumer one parameter tensor at a time. Memory: the captured activations plus k of their
// gradients.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "npeff/model/causal_lm.h"

namespace npeff::model {

struct ParameterSlice {
  int index = -1;  // into CausalLM::parameters()
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t offset = 0;  // in the concatenated selected-parameter vector
};

// Which parameters get gradients. Patterns are comma-separated globs over HF names ('*' any
// run, '?' one character, '[0-9]' / '[^...]' a character class); a leading '!' excludes. A name is
// selected when it matches an include and no exclude. The default (paper Section 3.1, after Marks
// et al.) is every transformer-block weight except norms: q/k/v/o, gate/up/down (and q/k/v biases).
// Embeddings are never selectable (per-example embedding gradients are sparse rows; not supported);
// an untied output head "lm_head.weight" is selectable but not selected by default (it is the
// output embedding); a tied head is the input embedding, so it is not a separate parameter.
class ParameterSelection {
 public:
  // The Llama-layout families' default; an empty spec selects the model's family default
  // (CausalLM::default_params(): GPT-2 "transformer.h.*,!*ln_*", GPT-NeoX
  // "gpt_neox.layers.*,!*layernorm*").
  static constexpr const char* kDefault = "model.layers.*,!*norm*";
  static ParameterSelection parse(const CausalLM& model, const std::string& patterns);
  const std::vector<ParameterSlice>& slices() const { return slices_; }
  int64_t total() const { return total_; }
  const std::string& patterns() const { return patterns_; }
  bool contains(int index) const;

 private:
  std::vector<ParameterSlice> slices_;
  int64_t total_ = 0;
  std::string patterns_;
};

bool glob_match(const std::string& pattern, const std::string& name);

struct GradientBatch {
  at::Tensor input_ids;       // int64 [B, T]
  at::Tensor attention_mask;  // [B, T], 1 = token (left or right padding)
  // Example (group) of each row, non-decreasing from 0: rows of one example (e.g. one prompt with
  // several label suffixes) have their gradients summed. Empty: row b is example b.
  std::vector<int64_t> group;
  // Caller's id of each group (e.g. the example's index in the data set), for objectives that
  // look up per-example targets. Empty: 0..G-1.
  std::vector<int64_t> group_ids;
  // Optional explicit layout (undefined tensors: causal rows). Rows must then be right-padded.
  TokenLayout layout;
  int64_t num_groups() const;
  const TokenLayout* layout_or_null() const {
    return layout.positions.defined() ? &layout : nullptr;
  }
  int64_t group_id(int64_t g) const { return group_ids.empty() ? g : group_ids[g]; }
};

// What objectives are computed from: the final hidden states of the batch, and logits wherever
// the objective asks for them (only there: a 49k-vocabulary output matmul over every position
// would dominate the cost).
class ModelOutputs {
 public:
  ModelOutputs(const CausalLM& model, at::Tensor hidden, ForwardCapture* capture)
      : model_(model), hidden_(std::move(hidden)), capture_(capture) {}
  const at::Tensor& hidden() const { return hidden_; }  // [B, T, hidden]
  // float32 logits [N, V] at (row, position) pairs (int64 [N] each).
  at::Tensor logits_at(const at::Tensor& rows, const at::Tensor& positions) const;
  // float32 logits [B, T, V] everywhere.
  at::Tensor all_logits() const;

 private:
  const CausalLM& model_;
  at::Tensor hidden_;
  ForwardCapture* capture_;
  mutable at::Tensor all_;  // all_logits(), computed (and captured) once
};

// Objectives [G, k]. Example g's objectives may depend only on the rows of group g.
using Objectives =
    std::function<at::Tensor(const ModelOutputs& outputs, const GradientBatch& batch)>;
// Receives one selected parameter's per-example gradients: float32 [G, k, numel] on the model's
// device, in ParameterSelection order.
using GradientConsumer = std::function<void(const ParameterSlice& slice, const at::Tensor& grads)>;

struct GradientResult {
  at::Tensor objectives;  // [G, k] float32, detached
  // Wall time of the engine's phases (benchmarks report the first as the floor).
  double seconds_forward_backward = 0;  // one batched forward + k batched backward passes
  double seconds_contraction = 0;       // per-example sums of dY^T X
  double seconds_consumer = 0;          // inside the consumer
};

// The batched engine.
GradientResult per_example_gradients(const CausalLM& model, const ParameterSelection& selection,
                                     const GradientBatch& batch, const Objectives& objectives,
                                     const GradientConsumer& consumer);

// Reference: each example alone (its rows unpadded), one autograd backward per objective with
// the selected parameters as leaves. Slow; for tests and the benchmark's baseline.
GradientResult per_example_gradients_loop(const CausalLM& model,
                                          const ParameterSelection& selection,
                                          const GradientBatch& batch, const Objectives& objectives,
                                          const GradientConsumer& consumer);

// Objectives: log-softmax at the last real token of each group's (single) row, of the token ids
// targets[group_id] ([num_examples, k] int64).
Objectives last_token_log_prob_objectives(const at::Tensor& targets);
// Index of the last real token of each row ([B] int64), for left or right padding.
at::Tensor last_token_positions(const at::Tensor& attention_mask);

}  // namespace npeff::model
