// Internals shared by the GGUF reader's translation units (src/io/gguf*.cpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io/printable.h"
#include "npeff/core/error.h"
#include "npeff/io/gguf.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the GGUF reader assumes a little-endian host (GGUF files are little-endian)");

namespace npeff::gguf::detail {

constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::FLOAT64);
constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS (ggml/include/ggml.h)
constexpr std::size_t kMaxName = 64;        // GGML_MAX_NAME: tensor names are < 64 bytes
constexpr uint64_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
// The fewest bytes a metadata entry (non-empty key: 8 + 1, type: 4, smallest value: 1) and a
// tensor info (name length: 8, n_dims: 4, type: 4, offset: 8) can take: used to refuse counts
// that the rest of the file cannot possibly hold.
constexpr uint64_t kMinEntryBytes = 14;
constexpr uint64_t kMinTensorInfoBytes = 24;

struct TypeTraits {
  const char* name;
  int64_t block_size;
  int64_t block_bytes;
};

// Indexed by ggml type number; {nullptr} marks numbers removed from ggml. Numbers from
// ggml/include/ggml.h (enum ggml_type), block layouts from ggml/src/ggml-common.h (the block_*
// structs and their static_asserts) and the type_traits table of ggml/src/ggml.c: docs/gguf.md.
// clang-format off
inline constexpr TypeTraits kTensorTypes[] = {
    {"F32", 1, 4},         {"F16", 1, 2},         {"Q4_0", 32, 18},      {"Q4_1", 32, 20},
    {nullptr, 0, 0},       {nullptr, 0, 0},       {"Q5_0", 32, 22},      {"Q5_1", 32, 24},     // 4-7
    {"Q8_0", 32, 34},      {"Q8_1", 32, 36},      {"Q2_K", 256, 84},     {"Q3_K", 256, 110},   // 8-11
    {"Q4_K", 256, 144},    {"Q5_K", 256, 176},    {"Q6_K", 256, 210},    {"Q8_K", 256, 292},   // 12-15
    {"IQ2_XXS", 256, 66},  {"IQ2_XS", 256, 74},   {"IQ3_XXS", 256, 98},  {"IQ1_S", 256, 50},   // 16-19
    {"IQ4_NL", 32, 18},    {"IQ3_S", 256, 110},   {"IQ2_S", 256, 82},    {"IQ4_XS", 256, 136}, // 20-23
    {"I8", 1, 1},          {"I16", 1, 2},         {"I32", 1, 4},         {"I64", 1, 8},        // 24-27
    {"F64", 1, 8},         {"IQ1_M", 256, 56},    {"BF16", 1, 2},        {nullptr, 0, 0},      // 28-31
    {nullptr, 0, 0},       {nullptr, 0, 0},       {"TQ1_0", 256, 54},    {"TQ2_0", 256, 66},   // 32-35
    {nullptr, 0, 0},       {nullptr, 0, 0},       {nullptr, 0, 0},       {"MXFP4", 32, 17},    // 36-39
    {"NVFP4", 64, 36},     {"Q1_0", 128, 18},                                                  // 40-41
};
// clang-format on
static_assert(sizeof(kTensorTypes) / sizeof(kTensorTypes[0]) ==
                  static_cast<uint32_t>(TensorType::Q1_0) + 1,
              "one row per ggml type number");

inline const TypeTraits* traits(TensorType type) {
  const auto i = static_cast<std::size_t>(type);
  if (i >= sizeof(kTensorTypes) / sizeof(kTensorTypes[0]) || !kTensorTypes[i].name) {
    return nullptr;
  }
  return &kTensorTypes[i];
}

inline bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::UINT16:
    case ValueType::INT16:
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::UINT64:
    case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Integer element at p of type t. A uint64 above INT64_MAX comes back as -1, with its value in
// *u64 (when given).
inline int64_t load_integer(const uint8_t* p, ValueType t, uint64_t* u64) {
  switch (t) {
    case ValueType::UINT8:
      return load<uint8_t>(p);
    case ValueType::INT8:
      return load<int8_t>(p);
    case ValueType::UINT16:
      return load<uint16_t>(p);
    case ValueType::INT16:
      return load<int16_t>(p);
    case ValueType::UINT32:
      return load<uint32_t>(p);
    case ValueType::INT32:
      return load<int32_t>(p);
    case ValueType::INT64:
      return load<int64_t>(p);
    case ValueType::UINT64: {
      const uint64_t v = load<uint64_t>(p);
      if (u64) *u64 = v;
      return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                 ? -1
                 : static_cast<int64_t>(v);
    }
    default:
      return 0;
  }
}

// Keys and names are raw bytes (not checked to be UTF-8): escape non-ASCII bytes too.
inline std::string printable(const std::string& s) {
  return io_detail::printable(s, io_detail::NonAscii::kEscape);
}

inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace npeff::gguf::detail
