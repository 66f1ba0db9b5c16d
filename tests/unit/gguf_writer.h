// A minimal GGUF writer for tests (header-only): builds GGUF files byte by byte so that tests can
// check the reader (include/npeff/io/gguf.h) on valid and deliberately broken files, and write
// vocab-only GGUFs for tokenizer tests. Not a library writer: no validation.
//
//   npeff::testing::GgufWriter w;
//   w.add_string("general.architecture", "llama")
//       .add_string_array("tokenizer.ggml.tokens", {"<s>", "a"})
//       .add_array<float>("tokenizer.ggml.scores", ValueType::FLOAT32, {0.f, -1.f})
//       .add_tensor("w", {4, 2}, TensorType::F32, bytes);
//   w.write(path);
//
// Layout: header, metadata in insertion order, tensor infos, zero padding up to the alignment,
// then each tensor's data at its offset, every tensor padded to the alignment (as llama.cpp's
// writer does). set_alignment() also writes general.alignment (uint32).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "npeff/io/gguf.h"
#include "unit/file_bytes.h"

namespace npeff::testing {

/// Little-endian byte buffer with GGUF's primitive encodings.
struct GgufBytes {
  std::vector<uint8_t> data;

  template <typename T>
  GgufBytes& put(T value) {
    static_assert(std::is_trivially_copyable<T>::value, "plain values only");
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    data.insert(data.end(), raw, raw + sizeof(T));
    return *this;
  }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  /// u64 length + bytes.
  GgufBytes& str(const std::string& s) {
    u64(s.size());
    data.insert(data.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& raw(const std::vector<uint8_t>& bytes) {
    data.insert(data.end(), bytes.begin(), bytes.end());
    return *this;
  }
  std::size_t size() const { return data.size(); }
};

class GgufWriter {
 public:
  using ValueType = npeff::gguf::ValueType;
  using TensorType = npeff::gguf::TensorType;

  explicit GgufWriter(uint32_t version = 3) : version_(version) {}

  // ---- Metadata ----
  template <typename T>
  GgufWriter& add_scalar(const std::string& key, ValueType type, T value) {
    GgufBytes b;
    b.str(key).u32(static_cast<uint32_t>(type)).put(value);
    kvs_.push_back(std::move(b));
    return *this;
  }
  GgufWriter& add_u8(const std::string& k, uint8_t v) { return add_scalar(k, ValueType::UINT8, v); }
  GgufWriter& add_i8(const std::string& k, int8_t v) { return add_scalar(k, ValueType::INT8, v); }
  GgufWriter& add_u16(const std::string& k, uint16_t v) {
    return add_scalar(k, ValueType::UINT16, v);
  }
  GgufWriter& add_i16(const std::string& k, int16_t v) {
    return add_scalar(k, ValueType::INT16, v);
  }
  GgufWriter& add_u32(const std::string& k, uint32_t v) {
    return add_scalar(k, ValueType::UINT32, v);
  }
  GgufWriter& add_i32(const std::string& k, int32_t v) {
    return add_scalar(k, ValueType::INT32, v);
  }
  GgufWriter& add_u64(const std::string& k, uint64_t v) {
    return add_scalar(k, ValueType::UINT64, v);
  }
  GgufWriter& add_i64(const std::string& k, int64_t v) {
    return add_scalar(k, ValueType::INT64, v);
  }
  GgufWriter& add_f32(const std::string& k, float v) {
    return add_scalar(k, ValueType::FLOAT32, v);
  }
  GgufWriter& add_f64(const std::string& k, double v) {
    return add_scalar(k, ValueType::FLOAT64, v);
  }
  GgufWriter& add_bool(const std::string& k, bool v) {
    return add_scalar(k, ValueType::BOOL, static_cast<uint8_t>(v ? 1 : 0));
  }
  GgufWriter& add_string(const std::string& key, const std::string& value) {
    GgufBytes b;
    b.str(key).u32(static_cast<uint32_t>(ValueType::STRING)).str(value);
    kvs_.push_back(std::move(b));
    return *this;
  }
  /// Array of fixed-size elements; T must match `element_type`'s size (bool: uint8_t).
  template <typename T>
  GgufWriter& add_array(const std::string& key, ValueType element_type,
                        const std::vector<T>& values) {
    GgufBytes b;
    b.str(key)
        .u32(static_cast<uint32_t>(ValueType::ARRAY))
        .u32(static_cast<uint32_t>(element_type));
    b.u64(values.size());
    for (const T& v : values) b.put(v);
    kvs_.push_back(std::move(b));
    return *this;
  }
  GgufWriter& add_string_array(const std::string& key, const std::vector<std::string>& values) {
    GgufBytes b;
    b.str(key)
        .u32(static_cast<uint32_t>(ValueType::ARRAY))
        .u32(static_cast<uint32_t>(ValueType::STRING));
    b.u64(values.size());
    for (const std::string& v : values) b.str(v);
    kvs_.push_back(std::move(b));
    return *this;
  }
  /// An entry with arbitrary bytes after the key (type and value): for malformed files.
  GgufWriter& add_raw_entry(const std::string& key, const std::vector<uint8_t>& type_and_value) {
    GgufBytes b;
    b.str(key).raw(type_and_value);
    kvs_.push_back(std::move(b));
    return *this;
  }
  /// Uses `alignment` for the layout and records it as general.alignment (uint32).
  GgufWriter& set_alignment(uint32_t alignment) {
    alignment_ = alignment;
    return add_u32("general.alignment", alignment);
  }

  // ---- Tensors ----
  /// `shape` in GGUF order (shape[0] fastest). `offset` (relative to the data section) overrides
  /// the automatic layout, for malformed files; `type` is a raw ggml type number.
  GgufWriter& add_tensor(const std::string& name, const std::vector<uint64_t>& shape, uint32_t type,
                         const std::vector<uint8_t>& data,
                         std::optional<uint64_t> offset = std::nullopt) {
    tensors_.push_back(Tensor{name, shape, type, data, offset});
    return *this;
  }
  GgufWriter& add_tensor(const std::string& name, const std::vector<uint64_t>& shape,
                         TensorType type, const std::vector<uint8_t>& data,
                         std::optional<uint64_t> offset = std::nullopt) {
    return add_tensor(name, shape, static_cast<uint32_t>(type), data, offset);
  }
  /// An F32 tensor holding `values`.
  GgufWriter& add_f32_tensor(const std::string& name, const std::vector<uint64_t>& shape,
                             const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return add_tensor(name, shape, TensorType::F32, bytes);
  }

  // ---- Overrides for malformed files ----
  std::optional<uint64_t> tensor_count_override;
  std::optional<uint64_t> kv_count_override;
  /// Whether the last tensor's data is padded up to the alignment (llama.cpp pads it).
  bool pad_end = true;

  /// Byte offset of the data section in the file that build() writes.
  uint64_t data_offset() const { return align(header_and_infos().size()); }

  std::vector<uint8_t> build() const {
    GgufBytes out = header_and_infos();
    const uint64_t start = align(out.size());
    out.data.resize(start, 0);
    uint64_t next = 0;
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      const uint64_t offset = t.offset ? *t.offset : next;
      const uint64_t end = start + offset + t.data.size();
      if (out.data.size() < end) out.data.resize(end, 0);
      std::copy(t.data.begin(), t.data.end(), out.data.begin() + start + offset);
      next = align(offset + t.data.size());
      if (pad_end || i + 1 < tensors_.size()) {
        if (out.data.size() < start + next) out.data.resize(start + next, 0);
      }
    }
    return out.data;
  }

  void write(const std::string& path) const { write_bytes(path, build()); }

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> shape;
    uint32_t type;
    std::vector<uint8_t> data;
    std::optional<uint64_t> offset;
  };

  uint64_t align(uint64_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }

  GgufBytes header_and_infos() const {
    GgufBytes out;
    out.raw({'G', 'G', 'U', 'F'}).u32(version_);
    out.u64(tensor_count_override ? *tensor_count_override : tensors_.size());
    out.u64(kv_count_override ? *kv_count_override : kvs_.size());
    for (const GgufBytes& kv : kvs_) out.raw(kv.data);
    uint64_t next = 0;
    for (const Tensor& t : tensors_) {
      const uint64_t offset = t.offset ? *t.offset : next;
      out.str(t.name).u32(static_cast<uint32_t>(t.shape.size()));
      for (uint64_t d : t.shape) out.u64(d);
      out.u32(t.type).u64(offset);
      next = align(offset + t.data.size());
    }
    return out;
  }

  uint32_t version_;
  uint64_t alignment_ = 32;
  std::vector<GgufBytes> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace npeff::testing
