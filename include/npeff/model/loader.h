// Loading Llama-family checkpoints in the formats users hold: a Hugging Face directory
// (config.json + model.safetensors or a sharded index), a GGUF file (llama.cpp; quantised
// tensors are dequantised to float32 on load), or a llama2.c .bin. Weights end up in float32 on
// the CPU with HF parameter names; move them with CausalLM::to.
#pragma once

#include <memory>
#include <string>

#include "npeff/model/causal_lm.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::model {

struct LoadOptions {
  // Tokenizer to use instead of the one found with the model (HF tokenizer.json in the directory,
  // GGUF metadata, tokenizer.bin next to a llama2.c checkpoint).
  std::string tokenizer_path;
  bool require_tokenizer = false;  // npeff::Error when none is found
};

struct LoadedModel {
  std::unique_ptr<CausalLM> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;  // null when none was found
  std::string format;                               // "hf", "gguf", "llama2c"
  std::string path;
  std::string details;  // e.g. GGUF tensor types, dtypes of the safetensors
};

// Detects the format of `path` (directory, .safetensors, GGUF magic, llama2.c header).
LoadedModel load_model(const std::string& path, const LoadOptions& options = {});

LoadedModel load_hf_model(const std::string& path, const LoadOptions& options);
LoadedModel load_gguf_model(const std::string& path, const LoadOptions& options);
LoadedModel load_llama2c_model(const std::string& path, const LoadOptions& options);

// The tokenizer load_model(path, {tokenizer_path}) would attach, without reading the weights
// (e.g. to decode token ids recorded in a file): `tokenizer_path` when given, else the one found
// with the checkpoint. null when the checkpoint has none; npeff::Error when a file is unreadable.
std::unique_ptr<tokenizer::Tokenizer> load_model_tokenizer(const std::string& path,
                                                           const std::string& tokenizer_path = "");

// HF config.json -> ModelConfig (model_type llama, qwen2, mistral without sliding window).
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

// llama.cpp and llama2.c store q/k rows in the interleaved rotary order (pairs (2i, 2i+1) of a
// head); HF pairs (i, i + head_dim/2). Converts a [heads * head_dim, ...] tensor to HF order.
at::Tensor unpermute_rotary_rows(const at::Tensor& w, int64_t heads);

}  // namespace npeff::model
