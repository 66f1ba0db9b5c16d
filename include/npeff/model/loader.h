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

// Content fingerprint of a checkpoint, recorded as provenance and in resume settings:
// "fnv1a64:<16 hex digits>" over the file (a directory: every regular file in it, by name, with
// names and sizes). Not cryptographic; it tells a changed checkpoint from the one a file was
// made with. Computed once per checkpoint version and cached (content_hash_cache_dir()) under
// the (path, size, mtime, ctime, inode) of each file: reading 1 GB costs ~1 s, and every shard
// of every SLURM array task starts with it. Any write to a file changes its ctime, which no
// user call can set back; files changed in the last 2 s are not cached (ctime moves once per
// timer tick on older kernels), so a cached value is not that of other content. npeff::Error
// when `path` cannot be read; a cache that cannot be read or written is skipped (debug log).
std::string content_hash(const std::string& path);

// Where content_hash caches: $NPEFF_CACHE_DIR, else $XDG_CACHE_HOME/npeff, else
// $HOME/.cache/npeff, + "/content-hash"; "" (no caching) when NPEFF_CACHE_DIR is "off" or no
// home is known.
std::string content_hash_cache_dir();

// HF config.json -> ModelConfig (model_type llama, qwen2, mistral without sliding window).
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

// llama.cpp and llama2.c store q/k rows in the interleaved rotary order (pairs (2i, 2i+1) of a
// head); HF pairs (i, i + head_dim/2). Converts a [heads * head_dim, ...] tensor to HF order.
at::Tensor unpermute_rotary_rows(const at::Tensor& w, int64_t heads);

}  // namespace npeff::model
