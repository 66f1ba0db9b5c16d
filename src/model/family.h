// A model family: everything that differs between, say, GPT-2 and Gemma 3 lives in one
// src/model/families/<family>.cpp that fills this struct. The runner (causal_lm.cpp) and the
// loaders (load_hf.cpp, load_gguf.cpp) know only roles; a family maps them to its config keys
// and tensor names. To add a family: copy the closest family file and adjust it; then the lists
// that name every family (registry.cpp, CMakeLists.txt, the fixture scripts and test lists, the
// supported list in docs/troubleshooting.md): docs/model.md "Adding a family".
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "npeff/model/config.h"

namespace npeff::gguf {
class File;
}

namespace npeff::model {

// What a tensor does in the block; the runner looks parameters up by (role, layer).
enum class Role : int {
  kEmbed,
  kPosEmbed,
  kFinalNorm,
  kFinalNormBias,
  kLmHead,  // global
  kAttnNorm,
  kAttnNormBias,
  kQ,
  kQBias,
  kK,
  kKBias,
  kV,
  kVBias,
  kQkv,
  kQkvBias,
  kO,
  kOBias,
  kQNorm,
  kKNorm,
  kPostAttnNorm,
  kFfnNorm,
  kFfnNormBias,
  kPostFfnNorm,
  kGate,
  kGateBias,
  kUp,
  kUpBias,
  kGateUp,
  kDown,
  kDownBias,
  kCount
};
constexpr int kRoleCount = static_cast<int>(Role::kCount);

struct TensorSpec {
  std::string name;            // the family's HF name
  std::vector<int64_t> shape;  // as npeff holds it: linear weights [out, in]
  Role role;
  int64_t layer = -1;          // -1 for global tensors
  bool hf_transposed = false;  // stored [in, out] in HF checkpoints (GPT-2 Conv1D)
  std::string gguf_name;       // llama.cpp's name ("" when the family has no GGUF form)
};

// config.json accessors with the messages every family shares.
class HfConfig {
 public:
  HfConfig(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {}
  const nlohmann::json& raw() const { return j_; }
  const std::string& source() const { return source_; }
  bool has(const char* key) const;
  int64_t integer(const char* key) const;  // required
  int64_t integer(const char* key, int64_t fallback) const;
  double number(const char* key, double fallback) const;
  bool boolean(const char* key, bool fallback) const;
  std::string string(const char* key, const std::string& fallback) const;
  // Refuses (npeff::Error) a config value the family's runner does not implement.
  void require(bool ok, const std::string& what) const;

 private:
  const nlohmann::json& j_;
  std::string source_;
};

// GGUF metadata accessors ({arch}.* keys).
class GgufConfig {
 public:
  GgufConfig(const gguf::File& f, std::string arch) : f_(f), arch_(std::move(arch)) {}
  const gguf::File& file() const { return f_; }
  const std::string& arch() const { return arch_; }
  bool has(const std::string& key) const;  // "{arch}." + key
  int64_t integer(const std::string& key) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  double number(const std::string& key, double fallback) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> integers(const std::string& key) const;  // int or array
  bool has_tensor(const std::string& name) const;

 private:
  const gguf::File& f_;
  std::string arch_;
};

struct Family {
  std::string name;                         // "gpt2"
  std::vector<std::string> hf_model_types;  // config.json model_type values
  std::string gguf_arch;                    // general.architecture ("" if none)
  // The paper's default parameter selection (every block weight; no embeddings, no norms).
  std::string default_params;
  // Family-specific config.json keys -> config (sizes, eps, rope and eos are read before).
  std::function<void(const HfConfig&, ModelConfig&)> parse_hf;
  std::function<void(const GgufConfig&, ModelConfig&)> parse_gguf;  // empty: no GGUF form
  std::function<std::vector<TensorSpec>(const ModelConfig&)> tensors;
  // GGUF tensor (float32, npeff layout) -> npeff's (llama.cpp conversions undone); empty: the
  // converter stores the tensors as they are.
  std::function<at::Tensor(const TensorSpec&, const ModelConfig&, at::Tensor)> from_gguf;
  // config.json has the usual key names (hidden_size, num_hidden_layers, ...; GPT-2 does not).
  bool common_hf_keys = true;
  // The base model's prefix of HF names ("model.", GPT-2 "transformer.", NeoX "gpt_neox."):
  // checkpoints of the base model (e.g. openai-community/gpt2) store names without it, and
  // transformers loads them into the LM-head model all the same.
  std::string hf_base_prefix = "model.";
  // Checkpoint tensors that are not parameters (buffers older transformers saved).
  std::vector<std::string> ignored_hf_tensors = {"rotary_emb.inv_freq"};
};

const std::vector<Family>& families();
const Family* family_by_hf_type(const std::string& model_type);
const Family* family_by_gguf_arch(const std::string& arch);
const Family& family_of(const ModelConfig& config);  // by config.architecture
std::string supported_hf_types();                    // "llama, mistral, qwen2, ..."
std::string supported_gguf_archs();

// Shared pieces of family files.
namespace family {
// Sizes, eps, rope (rope_theta/rope_scaling/rope_parameters, partial_rotary_factor), ids and
// tie_word_embeddings under HF's usual key names.
void parse_common_hf(const HfConfig& c, ModelConfig& m);
void parse_common_gguf(const GgufConfig& g, ModelConfig& m);
// HF rope_scaling / rope_parameters object -> scaling (nullopt for "default").
std::optional<RopeScaling> parse_rope_scaling(const HfConfig& c, const nlohmann::json& rope);
// Llama-layout blocks ("model.layers.N.self_attn.q_proj.weight", ...): the tensors of Llama,
// Mistral, Qwen2/3, Gemma 2/3, OLMo-2 and Phi-3 (fused forms by config).
std::vector<TensorSpec> llama_layout_tensors(const ModelConfig& c);
std::string layer_name(int64_t layer, const std::string& rest);  // "model.layers.N." + rest
// Appends one layer's tensors to `out`: add(rest, shape, role, gguf_rest[, hf_transposed])
// names them hf_prefix + "N." + rest and "blk.N." + gguf_rest.
class LayerTensors {
 public:
  LayerTensors(std::vector<TensorSpec>& out, const std::string& hf_prefix, int64_t layer)
      : out_(out),
        hf_(hf_prefix + std::to_string(layer) + "."),
        gguf_("blk." + std::to_string(layer) + "."),
        layer_(layer) {}
  void operator()(const std::string& rest, std::vector<int64_t> shape, Role role,
                  const std::string& gguf_rest, bool hf_transposed = false) const {
    out_.push_back({hf_ + rest, std::move(shape), role, layer_, hf_transposed, gguf_ + gguf_rest});
  }

 private:
  std::vector<TensorSpec>& out_;
  std::string hf_, gguf_;
  int64_t layer_;
};
// config.json layer_types: true for "sliding_attention" (npeff::Error for other values).
std::vector<bool> sliding_layer_types(const HfConfig& c);
// bos/pad/eos ids of config.json (eos: an int or a list).
void parse_hf_ids(const HfConfig& c, ModelConfig& m);
}  // namespace family

}  // namespace npeff::model
