// The families npeff runs, in the order `model-info` and error messages list them.
#include <algorithm>

#include "model/family.h"
#include "npeff/core/error.h"

namespace npeff::model {

Family llama_family();
Family mistral_family();
Family qwen2_family();
Family qwen3_family();
Family gemma2_family();
Family gemma3_family();
Family gpt2_family();
Family gpt_neox_family();
Family phi3_family();
Family olmo2_family();

const std::vector<Family>& families() {
  static const std::vector<Family> all = {
      llama_family(),  mistral_family(), qwen2_family(),    qwen3_family(), gemma2_family(),
      gemma3_family(), gpt2_family(),    gpt_neox_family(), phi3_family(),  olmo2_family()};
  return all;
}

const Family* family_by_hf_type(const std::string& model_type) {
  for (const Family& f : families()) {
    const auto& t = f.hf_model_types;
    if (std::find(t.begin(), t.end(), model_type) != t.end()) return &f;
  }
  return nullptr;
}

const Family* family_by_gguf_arch(const std::string& arch) {
  for (const Family& f : families()) {
    if (!f.gguf_arch.empty() && f.gguf_arch == arch) return &f;
  }
  return nullptr;
}

const Family& family_of(const ModelConfig& config) {
  for (const Family& f : families()) {
    if (f.name == config.architecture) return f;
  }
  NPEFF_CHECK(false, "architecture '", config.architecture, "' is not supported (",
              supported_hf_types(), ")");
  return families().front();
}

std::string supported_hf_types() {
  std::string out;
  for (const Family& f : families())
    for (const std::string& t : f.hf_model_types) out += (out.empty() ? "" : ", ") + t;
  return out;
}

std::string supported_gguf_archs() {
  std::string out;
  for (const Family& f : families())
    if (!f.gguf_arch.empty()) out += (out.empty() ? "" : ", ") + f.gguf_arch;
  return out;
}

}  // namespace npeff::model
