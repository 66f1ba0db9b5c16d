// A validated, read-only reader for safetensors files (Hugging Face's weight format) and model
// directories (model.safetensors, or model.safetensors.index.json + shards). No LibTorch, no
// HDF5: part of the npeff_base library.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON header (an object: tensor name
// -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional "__metadata__" string ->
// string map), then the data section; offsets are relative to the data section. Everything is
// validated up front (lengths, JSON, dtypes, shapes with overflow checks, byte sizes, bounds,
// overlaps, duplicate names); a malformed file raises npeff::Error naming the file, where in it
// (a byte offset, or the JSON header's byte range and the tensor), what was found and what was
// expected. Gaps between tensors and bytes after the last tensor are accepted (the format says
// the buffer should be fully indexed; the reference Rust reader refuses gaps), as are entry keys
// other than the three (the reference reader ignores them too). Tensor names are any JSON strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "npeff/io/mapped_file.h"

namespace npeff::safetensors {

/// Element types, named as in the safetensors specification.
enum class Dtype {
  F64,
  F32,
  F16,
  BF16,
  I64,
  I32,
  I16,
  I8,
  U8,
  BOOL,
  F8_E4M3,
  F8_E5M2,
  U16,
  U32,
  U64
};
/// "F32", "BF16", ... as written in headers.
const char* dtype_name(Dtype dtype);
/// Bytes per element (BOOL: 1).
std::size_t dtype_size(Dtype dtype);

/// One tensor of a File. Shapes are in row-major (PyTorch) order; an empty shape is a scalar.
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;    // byte offsets relative to the data section
  const uint8_t* data = nullptr;  // start of this tensor's bytes in the mapping (not aligned)

  int64_t numel() const;
};

/// A memory-mapped, validated safetensors file. Movable, not copyable; unmaps on destruction.
/// TensorView data pointers stay valid while the File lives (moving it keeps them valid).
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
  /// Byte offset of the data section in the file (8 + header length).
  uint64_t data_offset() const { return data_offset_; }

  /// In header order.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  /// nullptr when absent.
  const TensorView* find(const std::string& name) const;
  /// Throws npeff::Error naming the tensor and the file when absent.
  const TensorView& at(const std::string& name) const;
  /// The "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  friend struct HeaderParser;  // src/io/safetensors.cpp
  File() = default;

  io::MappedFile map_;  // empty for a moved-from File
  uint64_t data_offset_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// A model directory's weights: model.safetensors, or model.safetensors.index.json and the shards
/// its weight_map names (as transformers does, a single model.safetensors wins when both exist).
/// Validates that every weight_map entry exists in the shard it names and that no tensor name
/// appears in two shards. Tensors of a shard missing from the weight_map are included too.
/// Movable, not copyable.
class Checkpoint {
 public:
  static Checkpoint open_directory(const std::string& dir);
  /// One safetensors file as a checkpoint.
  static Checkpoint open_file(const std::string& path);

  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// nullptr when absent.
  const TensorView* find(const std::string& name) const;
  /// Throws npeff::Error naming the tensor and source() when absent.
  const TensorView& at(const std::string& name) const;
  /// The directory or file it was opened from.
  const std::string& source() const { return source_; }
  /// The opened files (one, or the shards in sorted order).
  const std::vector<File>& files() const { return files_; }

 private:
  Checkpoint() = default;
  void add_file(File file);

  std::string source_;
  std::vector<File> files_;
  std::map<std::string, const TensorView*> index_;  // into files_[i].tensors()
};

/// Converts the numel() elements of a F64, F32, F16 or BF16 tensor to float32 (exact for
/// F32/F16/BF16, round-to-nearest for F64) into `out`. Other dtypes: npeff::Error naming the
/// tensor and its dtype.
void to_float32(const TensorView& t, float* out);

}  // namespace npeff::safetensors
