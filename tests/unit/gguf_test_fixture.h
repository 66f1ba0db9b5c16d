// Shared by the GGUF reader tests (test_gguf.cpp: valid files; test_gguf_malformed.cpp:
// malformed files and sweeps): a temp-dir fixture that writes GGUF bytes and expects open errors,
// and a file exercising every value type and several tensor types.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "npeff/io/gguf.h"
#include "unit/file_bytes.h"
#include "unit/gguf_writer.h"
#include "unit/test_util.h"

namespace npeff::testing {

inline std::vector<uint8_t> iota_bytes(std::size_t n, uint8_t start = 0) {
  std::vector<uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(start + i * 7);
  return out;
}

class GgufTest : public TempDirTest {
 protected:
  std::string write(const std::vector<uint8_t>& bytes, const std::string& name = "t.gguf") {
    const std::string p = path(name);
    write_bytes(p, bytes);
    return p;
  }
  std::string write(const GgufWriter& w, const std::string& name = "t.gguf") {
    return write(w.build(), name);
  }
  // Expects opening `bytes` to throw npeff::Error mentioning the file and every one of `parts`.
  void expect_open_error(const std::vector<uint8_t>& bytes, std::vector<std::string> parts) {
    const std::string p = write(bytes, "bad.gguf");
    parts.push_back(p);
    expect_error([&] { gguf::File::open(p); }, parts);
  }
  void expect_open_error(const GgufWriter& w, std::vector<std::string> parts) {
    expect_open_error(w.build(), std::move(parts));
  }
};

// A file exercising every value type, arrays, and several tensor types.
inline GgufWriter rich_writer() {
  using gguf::TensorType;
  using gguf::ValueType;
  GgufWriter w;
  w.add_string("general.architecture", "llama")
      .add_u8("u8", 200)
      .add_i8("i8", -100)
      .add_u16("u16", 60000)
      .add_i16("i16", -30000)
      .add_u32("u32", 4000000000u)
      .add_i32("i32", -2000000000)
      .add_u64("u64", 18000000000000000000ull)
      .add_i64("i64", -9000000000000000000ll)
      .add_f32("f32", 1.5f)
      .add_f64("f64", -2.25)
      .add_bool("bool_true", true)
      .add_bool("bool_false", false)
      .add_string_array("tokenizer.ggml.tokens", {"<s>", "", "a b", std::string("x\0y", 3)})
      .add_array<float>("tokenizer.ggml.scores", ValueType::FLOAT32, {0.f, -1.5f, 2.f, 3.25f})
      .add_array<int32_t>("tokenizer.ggml.token_type", ValueType::INT32, {1, 3, -1, 2})
      .add_array<double>("f64s", ValueType::FLOAT64, {1.0, -0.5})
      .add_array<uint8_t>("bools", ValueType::BOOL, {1, 0, 1})
      .add_array<uint64_t>("u64s", ValueType::UINT64, {0, 1, 1ull << 40})
      .add_array<int8_t>("i8s", ValueType::INT8, {-128, 127})
      .add_array<uint16_t>("u16s", ValueType::UINT16, {65535})
      .add_array<int16_t>("i16s", ValueType::INT16, {-32768})
      .add_array<uint32_t>("u32s", ValueType::UINT32, {4294967295u})
      .add_array<int64_t>("i64s", ValueType::INT64, {std::numeric_limits<int64_t>::min()})
      .add_array<uint8_t>("u8s", ValueType::UINT8, {})
      .add_f32_tensor("token_embd.weight", {3, 2}, {1, 2, 3, 4, 5, 6})
      .add_tensor("blk.0.attn_q.weight", {64, 3}, TensorType::Q8_0, iota_bytes(2 * 3 * 34))
      .add_tensor("blk.0.ffn.weight", {256, 2}, TensorType::Q6_K, iota_bytes(2 * 210, 5))
      .add_tensor("scalar", {}, TensorType::F16, {0x00, 0x3c})
      .add_tensor("empty", {0, 4}, TensorType::F32, {});
  return w;
}

}  // namespace npeff::testing
