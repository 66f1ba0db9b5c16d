// A validated, read-only reader for GGUF files (llama.cpp's model format): metadata key/value
// pairs (tokenizers, hyperparameters) and tensor infos with pointers into the memory-mapped
// tensor data. No LibTorch, no HDF5: part of the npeff_base library.
//
// Every read is bounds-checked. A malformed file (truncated, absurd counts or lengths, invalid
// value or tensor types, nested arrays, duplicate keys or tensor names, overflowing shapes,
// misaligned, overlapping or out-of-file tensor data) raises npeff::Error naming the file, the
// byte offset, what was found and what was expected; nothing is allocated from an unchecked
// count. Only little-endian files (all that llama.cpp writes by default) are read; versions 2
// and 3 are accepted. Strings (keys, values, tensor names) are raw bytes: they are NOT checked
// to be valid UTF-8 at this layer. See docs/gguf.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "npeff/io/mapped_file.h"

namespace npeff::gguf {

/// Metadata value types (gguf_type in llama.cpp's gguf.h).
enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
/// "uint8", "int32", "string", "array", ...; "invalid" for numbers outside the enum.
const char* value_type_name(ValueType type);
/// Size in bytes of one element of a fixed-size type; 0 for STRING, ARRAY and invalid types.
std::size_t value_type_size(ValueType type);

/// Tensor element types, numbered as llama.cpp's enum ggml_type (ggml/include/ggml.h). Numbers
/// 4, 5 and 31-33, 36-38 were removed from ggml and are refused, as are numbers this reader does
/// not know (reported by number).
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};
/// Whether `type` is a tensor type this reader knows the block layout of.
bool is_known_tensor_type(TensorType type);
/// "F32", "Q4_K", ...; "unknown ggml type N" for numbers this reader does not know.
std::string tensor_type_name(TensorType type);
/// Elements per block (1 for F32/F16/BF16/I8.., 32 for Q4_0, 256 for the K quants). Throws
/// npeff::Error for unknown types.
int64_t tensor_type_block_size(TensorType type);
/// Bytes per block (4 for F32, 18 for Q4_0, 210 for Q6_K, ...). Throws npeff::Error for unknown
/// types.
int64_t tensor_type_block_bytes(TensorType type);

/// One metadata value: a scalar, a string, or a one-level array of scalars or strings. The typed
/// accessors check the type and throw npeff::Error naming the key, the file, what was found and
/// what was expected.
class Value {
 public:
  Value() = default;

  ValueType type() const { return type_; }
  /// Element type of an array (throws for non-arrays).
  ValueType element_type() const;
  /// Number of elements of an array (throws for non-arrays).
  std::size_t array_size() const;
  bool is_array() const { return type_ == ValueType::ARRAY; }
  /// "uint32", "string", "array of float32", ...
  std::string type_description() const;

  /// STRING only.
  const std::string& as_string() const;
  /// Any integer type (uint8 ... int64; not bool). A uint64 above INT64_MAX throws.
  int64_t as_int64() const;
  /// Any integer type; negative values throw.
  uint64_t as_uint64() const;
  /// FLOAT32, FLOAT64 or any integer type.
  double as_double() const;
  /// BOOL only.
  bool as_bool() const;
  /// Array of STRING.
  const std::vector<std::string>& as_string_array() const;
  /// Array of FLOAT32 or FLOAT64 (float64 elements are narrowed to float).
  std::vector<float> as_float_array() const;
  /// Array of any integer type (uint64 elements above INT64_MAX throw).
  std::vector<int64_t> as_int_array() const;
  /// Array of BOOL.
  std::vector<bool> as_bool_array() const;

  /// "key 'k' in GGUF file 'path'": used in error messages.
  const std::string& where() const { return where_; }

 private:
  friend struct Parser;  // src/io/gguf.cpp

  [[noreturn]] void type_mismatch(const char* expected) const;

  ValueType type_ = ValueType::UINT8;
  ValueType element_type_ = ValueType::UINT8;  // arrays only
  std::size_t count_ = 0;                      // arrays only
  std::vector<uint8_t> bytes_;        // a fixed-size scalar, or the elements of a numeric array
  std::string string_;                // STRING
  std::vector<std::string> strings_;  // array of STRING
  std::string where_;
};

/// One tensor's description. Shapes use GGUF/ggml order: shape[0] (ne[0]) is the fastest-varying
/// dimension (the reverse of PyTorch's order). A tensor with no dimensions holds one element.
struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;
  TensorType type = TensorType::F32;
  uint64_t offset = 0;  // relative to the start of the data section
  uint64_t nbytes = 0;

  int64_t n_elements() const;
};

/// A memory-mapped, validated GGUF file. Movable, not copyable; unmaps on destruction. Tensor
/// data pointers stay valid while the File lives (moving it keeps them valid).
class File {
 public:
  /// Maps and validates `path`; throws npeff::Error for a missing, unreadable or malformed file.
  static File open(const std::string& path);

  File(File&& other) noexcept = default;
  File& operator=(File&& other) noexcept = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return map_.path(); }
  /// File size in bytes.
  uint64_t size() const { return map_.size(); }
  uint32_t version() const { return version_; }
  /// general.alignment, or 32 when absent.
  uint64_t alignment() const { return alignment_; }
  /// Byte offset of the data section in the file (tensor offsets are relative to it).
  uint64_t data_offset() const { return data_offset_; }

  /// All metadata, sorted by key.
  const std::map<std::string, Value>& metadata() const { return metadata_; }
  /// Keys in file order.
  const std::vector<std::string>& keys() const { return keys_; }
  /// nullptr when absent.
  const Value* find(const std::string& key) const;
  /// Throws npeff::Error naming the key and the file when absent.
  const Value& at(const std::string& key) const;

  /// Tensor infos in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// nullptr when absent.
  const TensorInfo* find_tensor(const std::string& name) const;
  /// Throws npeff::Error naming the tensor and the file when absent.
  const TensorInfo& tensor(const std::string& name) const;
  /// Start of the tensor's nbytes bytes of data inside the mapping. `info` must come from this
  /// File. Data are only as aligned as the file's alignment (and the page-aligned mapping).
  const uint8_t* tensor_data(const TensorInfo& info) const;

 private:
  friend struct Parser;  // src/io/gguf.cpp
  File() = default;

  io::MappedFile map_;  // empty for a moved-from File
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, Value> metadata_;
  std::vector<std::string> keys_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> tensor_index_;
};

}  // namespace npeff::gguf
