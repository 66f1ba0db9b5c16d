// GGUF type tables and metadata values: see include/npeff/io/gguf.h.
#include <limits>

#include "io/gguf_internal.h"

namespace npeff::gguf {

using namespace detail;

// ---- Type tables -----------------------------------------------------------------------------

const char* value_type_name(ValueType type) {
  static const char* const kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                       "int32",  "float32", "bool",   "string", "array",
                                       "uint64", "int64",   "float64"};
  const auto i = static_cast<uint32_t>(type);
  return i <= kMaxValueType ? kNames[i] : "invalid";
}

std::size_t value_type_size(ValueType type) {
  // uint8 int8 uint16 int16 uint32 int32 float32 bool string array uint64 int64 float64
  static const std::size_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  const auto i = static_cast<uint32_t>(type);
  return i <= kMaxValueType ? kSizes[i] : 0;
}

bool is_known_tensor_type(TensorType type) {
  return traits(type) != nullptr;
}

std::string tensor_type_name(TensorType type) {
  const TypeTraits* t = traits(type);
  return t ? t->name : "unknown ggml type " + std::to_string(static_cast<uint32_t>(type));
}

int64_t tensor_type_block_size(TensorType type) {
  const TypeTraits* t = traits(type);
  NPEFF_CHECK(t, "no block layout for ", tensor_type_name(type));
  return t->block_size;
}

int64_t tensor_type_block_bytes(TensorType type) {
  const TypeTraits* t = traits(type);
  NPEFF_CHECK(t, "no block layout for ", tensor_type_name(type));
  return t->block_bytes;
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated against overflow when the file was opened
  return n;
}

// ---- Value -----------------------------------------------------------------------------------

void Value::type_mismatch(const char* expected) const {
  NPEFF_FAIL(where_, ": expected ", expected, ", found ", type_description());
}

std::string Value::type_description() const {
  if (type_ != ValueType::ARRAY) return value_type_name(type_);
  return std::string("array of ") + value_type_name(element_type_) + " (" + std::to_string(count_) +
         " elements)";
}

ValueType Value::element_type() const {
  if (type_ != ValueType::ARRAY) type_mismatch("an array");
  return element_type_;
}

std::size_t Value::array_size() const {
  if (type_ != ValueType::ARRAY) type_mismatch("an array");
  return count_;
}

const std::string& Value::as_string() const {
  if (type_ != ValueType::STRING) type_mismatch("a string");
  return string_;
}

int64_t Value::as_int64() const {
  if (!is_integer(type_)) type_mismatch("an integer");
  uint64_t u = 0;
  const int64_t v = load_integer(bytes_.data(), type_, &u);
  NPEFF_CHECK(!(type_ == ValueType::UINT64 && v < 0), where_, ": uint64 value ", u,
              " does not fit in int64");
  return v;
}

uint64_t Value::as_uint64() const {
  if (!is_integer(type_)) type_mismatch("an integer");
  if (type_ == ValueType::UINT64) return load<uint64_t>(bytes_.data());
  const int64_t v = load_integer(bytes_.data(), type_, nullptr);
  NPEFF_CHECK(v >= 0, where_, ": expected a non-negative integer, found ", v);
  return static_cast<uint64_t>(v);
}

double Value::as_double() const {
  if (type_ == ValueType::FLOAT32) return load<float>(bytes_.data());
  if (type_ == ValueType::FLOAT64) return load<double>(bytes_.data());
  if (type_ == ValueType::UINT64) return static_cast<double>(load<uint64_t>(bytes_.data()));
  if (!is_integer(type_)) type_mismatch("a number");
  return static_cast<double>(load_integer(bytes_.data(), type_, nullptr));
}

bool Value::as_bool() const {
  if (type_ != ValueType::BOOL) type_mismatch("a bool");
  return bytes_[0] != 0;
}

const std::vector<std::string>& Value::as_string_array() const {
  if (type_ != ValueType::ARRAY || element_type_ != ValueType::STRING) {
    type_mismatch("an array of string");
  }
  return strings_;
}

std::vector<float> Value::as_float_array() const {
  if (type_ != ValueType::ARRAY ||
      (element_type_ != ValueType::FLOAT32 && element_type_ != ValueType::FLOAT64)) {
    type_mismatch("an array of float32 or float64");
  }
  std::vector<float> out(count_);
  for (std::size_t i = 0; i < count_; ++i) {
    out[i] = element_type_ == ValueType::FLOAT32
                 ? load<float>(bytes_.data() + 4 * i)
                 : static_cast<float>(load<double>(bytes_.data() + 8 * i));
  }
  return out;
}

std::vector<int64_t> Value::as_int_array() const {
  if (type_ != ValueType::ARRAY || !is_integer(element_type_)) {
    type_mismatch("an array of integers");
  }
  const std::size_t size = value_type_size(element_type_);
  std::vector<int64_t> out(count_);
  for (std::size_t i = 0; i < count_; ++i) {
    uint64_t u = 0;
    out[i] = load_integer(bytes_.data() + size * i, element_type_, &u);
    NPEFF_CHECK(!(element_type_ == ValueType::UINT64 && out[i] < 0), where_, ": element ", i,
                " (uint64 ", u, ") does not fit in int64");
  }
  return out;
}

std::vector<bool> Value::as_bool_array() const {
  if (type_ != ValueType::ARRAY || element_type_ != ValueType::BOOL) {
    type_mismatch("an array of bool");
  }
  std::vector<bool> out(count_);
  for (std::size_t i = 0; i < count_; ++i) out[i] = bytes_[i] != 0;
  return out;
}

}  // namespace npeff::gguf
