// A decoder-only causal LM in LibTorch (ATen), one block layout with the switches of
// ModelConfig: the families of src/model/families/ (Llama, Mistral, Qwen2/3, Gemma 2/3, GPT-2,
// GPT-NeoX/Pythia, Phi-3, OLMo-2), each computed as its Hugging Face modeling_*.py does.
// Parameters carry the family's HF names, so checkpoints of every format map onto one layout;
// linear weights are held [out, in] (GPT-2's Conv1D weights are transposed on load).
//
// Padding: rows of a batch may be padded on the left or on the right (attention_mask 0 marks
// padding). Positions count each row's real tokens from 0 (cumsum(mask) - 1), so a left-padded
// and a right-padded batch give the same logits at real tokens. Logits at padded positions are
// unspecified.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "npeff/model/config.h"

namespace npeff::model {

struct Parameter {
  std::string name;  // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
  at::Tensor tensor;
};

// Receives, during a forward pass, the input and output of every linear map and norm whose
// weight is selected: the per-example gradient engine turns them into per-example gradients.
// Inputs and outputs are [N, features] over the batch's real tokens, row-major (row 0's tokens,
// then row 1's, ...); the output head's are [B, T, features].
class ForwardCapture {
 public:
  virtual ~ForwardCapture() = default;
  virtual bool wants(int weight_index) const = 0;
  // Linear: output = input W^T (+ b), bias_index -1 without a bias. Norm (is_norm): output =
  // W * input (+ b; Gemma: (1 + W) * input), where `input` is the normalised activation; a
  // per-head norm (q/k norms of Qwen3, Gemma 3) records [N, heads, head_dim].
  virtual void record(int weight_index, int bias_index, bool is_norm, const at::Tensor& input,
                      const at::Tensor& output) = 0;
};

// An explicit token layout for a batch: rotary positions and which keys each query attends to.
// Used to share a prompt among alternative continuations: one row holds the prompt once and
// then every suffix, each suffix token attending to the prompt and to its own suffix's earlier
// tokens, at the positions it would have after the prompt (paper Appendix D, CLINC150).
struct TokenLayout {
  at::Tensor positions;  // int64 [B, T]: rotary position of each token
  at::Tensor allowed;    // bool [B, T, T]: query t may attend to key s; must hold for s == t
};

class CausalLM {
 public:
  // `parameters` must hold exactly the tensors expected_parameter_names() lists, with the
  // shapes the config implies (npeff::Error naming the tensor otherwise).
  CausalLM(ModelConfig config, std::vector<Parameter> parameters, std::string source);

  const ModelConfig& config() const { return config_; }
  const std::vector<Parameter>& parameters() const { return parameters_; }
  const std::string& source() const { return source_; }
  int find(const std::string& name) const;  // -1 when absent

  // logits float32 [B, T, V] for input_ids int64 [B, T] and attention_mask [B, T] (1 = token).
  // With a capture, every activation is part of an autograd graph rooted at the embeddings so
  // that gradients with respect to the captured outputs can be taken.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     ForwardCapture* capture = nullptr) const;
  // The final (normed) hidden states [B, T, hidden] in the compute dtype; output_logits() maps any
  // [..., hidden] rows to float32 logits. Computing logits only where they are needed saves the
  // largest matmul of a big-vocabulary model (and its backward).
  // With a `layout`, its positions and attention pattern replace the causal default (padding
  // keys are still excluded).
  at::Tensor forward_hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                            ForwardCapture* capture = nullptr,
                            const TokenLayout* layout = nullptr) const;
  at::Tensor output_logits(const at::Tensor& hidden, ForwardCapture* capture = nullptr) const;
  // Parameter index of the output head's weight (the embedding's when tied).
  int output_head_index() const { return lm_head_; }

  // Moves the weights (and computes in `dtype` on CUDA: softmax and norms stay float32).
  void to(const at::Device& device, at::ScalarType dtype);
  at::Device device() const;
  at::ScalarType dtype() const;

  // The names (HF order) and shapes a checkpoint must provide for `config`.
  static std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(
      const ModelConfig& config);
  // The family's default --params selection (every block weight; no embeddings, no norms).
  std::string default_params() const;
  // Whether parameter i is an embedding (token or position): no per-example gradients.
  bool is_embedding(int index) const;

 private:
  // Parameter index of each role (family.h Role) of a layer, -1 when absent.
  using Slots = std::vector<int>;
  // Real tokens of a padded batch: per-token ops run on these N rows only.
  struct Packing {
    int64_t batch = 0, length = 0;
    at::Tensor tokens;  // int64 [N]: flat indices (row * length + position) of real tokens
    bool padded = false;
    std::vector<int64_t> lengths;  // real tokens per row
    bool equal_lengths = true;
    at::Tensor layout_mask;       // with a TokenLayout: additive float32 mask [B, 1, T, T]
    at::Tensor layout_positions;  // with a TokenLayout: int64 [B, T] (sliding windows)
    at::Tensor unpack(const at::Tensor& x) const;  // [N, d] -> [B * T, d] (zeros at padding)
    at::Tensor pack(const at::Tensor& x) const;    // [B * T, d] -> [N, d]
  };
  const at::Tensor& p(int i) const { return parameters_[i].tensor; }
  struct RotaryAngles {
    at::Tensor cos, sin;  // [N, 1, rotary_dim] in the compute dtype; undefined: no rotary
  };
  at::Tensor norm(const at::Tensor& x, int weight, int bias, ForwardCapture* capture) const;
  at::Tensor linear(const at::Tensor& x, int weight, int bias, ForwardCapture* capture) const;
  at::Tensor attention(const at::Tensor& x, int64_t layer, const Packing& pack,
                       const RotaryAngles& rotary, ForwardCapture* capture) const;
  at::Tensor mlp(const at::Tensor& x, int64_t layer, ForwardCapture* capture) const;
  RotaryAngles rotary_angles(const at::Tensor& positions, bool local, int64_t seq_len) const;
  int slot(int64_t layer, int role) const;  // layer -1: global
  RopeConfig rope_config(int which) const;  // 0: global layers, 1: local (rope_local)

  ModelConfig config_;
  std::vector<Parameter> parameters_;
  std::string source_;
  std::vector<Slots> layers_;
  Slots global_;
  int embed_ = -1, lm_head_ = -1;  // lm_head_ == embed_ when tied
  // Rotary inverse frequencies and cos/sin factor of global [0] and local [1] layers, computed
  // once when they do not depend on the sequence length (undefined otherwise: per forward).
  at::Tensor inv_freq_[2];
  double rotary_factor_[2] = {1.0, 1.0};
};

}  // namespace npeff::model
