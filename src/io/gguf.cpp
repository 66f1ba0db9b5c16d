// GGUF reader: see include/npeff/io/gguf.h and docs/gguf.md. No LibTorch or HDF5 here.
#include "npeff/io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include "io/gguf_internal.h"
#include "npeff/core/error.h"

namespace npeff::gguf {

using namespace detail;

// ---- Parsing ---------------------------------------------------------------------------------

// Bounds-checked cursor over the mapping, plus the parsing steps (a friend of File and Value).
struct Parser {
  explicit Parser(File& f) : file(f) {}

  File& file;
  uint64_t pos = 0;
  std::string context;  // what is being read, appended to error messages

  uint64_t remaining() const { return file.size() - pos; }

  template <typename... Args>
  [[noreturn]] void fail_at(uint64_t offset, const Args&... args) const {
    NPEFF_FAIL("GGUF file '", file.path(), "': byte ", offset, ": ", args...,
               context.empty() ? "" : " (reading ", context, context.empty() ? "" : ")");
  }

  const uint8_t* take(uint64_t n, const char* what) {
    if (n > remaining()) {
      fail_at(pos, "file truncated: ", what, " needs ", n, " bytes but only ", remaining(),
              " remain (file size ", file.size(), ")");
    }
    const uint8_t* p = file.map_.data() + pos;
    pos += n;
    return p;
  }

  template <typename T>
  T read(const char* what) {
    return load<T>(take(sizeof(T), what));
  }

  std::string read_string(const char* what) {
    const uint64_t at = pos;
    const uint64_t length = read<uint64_t>(what);
    if (length > remaining()) {
      fail_at(at, what, " has length ", length, " but only ", remaining(),
              " bytes remain in the file (file size ", file.size(), ")");
    }
    const uint8_t* p = take(length, what);
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(length));
  }

  ValueType read_value_type(const char* what) {
    const uint64_t at = pos;
    const uint32_t t = read<uint32_t>(what);
    if (t > kMaxValueType) {
      fail_at(at, "invalid ", what, " ", t, ", expected 0..", kMaxValueType, " (uint8 .. float64)");
    }
    return static_cast<ValueType>(t);
  }

  void check_bools(const uint8_t* p, uint64_t n, uint64_t at) const {
    for (uint64_t i = 0; i < n; ++i) {
      if (p[i] > 1) {
        fail_at(at + i, "invalid bool byte ", static_cast<int>(p[i]), ", expected 0 or 1");
      }
    }
  }

  void parse_header(uint64_t* n_tensors, uint64_t* n_kv) {
    const uint8_t* magic = take(4, "the magic 'GGUF'");
    if (std::memcmp(magic, "GGUF", 4) != 0) {
      fail_at(0, "not a GGUF file: magic is '",
              printable(std::string(reinterpret_cast<const char*>(magic), 4)),
              "', expected 'GGUF'");
    }
    const uint64_t at = pos;
    file.version_ = read<uint32_t>("the version");
    const uint32_t v = file.version_;
    if (v != 0 && (v & 0xFFFFu) == 0) {
      fail_at(at, "version ", v, " looks byte-swapped: big-endian GGUF files are not supported");
    }
    if (v == 1) fail_at(at, "GGUF version 1 is not supported (expected version 2 or 3)");
    if (v != 2 && v != 3) fail_at(at, "unsupported GGUF version ", v, ", expected 2 or 3");

    *n_tensors = read<uint64_t>("tensor_count");
    const uint64_t kv_at = pos;
    *n_kv = read<uint64_t>("kv_count");
    if (*n_kv > remaining() / kMinEntryBytes) {
      fail_at(kv_at, "kv_count ", *n_kv, " is impossible: the remaining ", remaining(),
              " bytes hold at most ", remaining() / kMinEntryBytes, " metadata entries");
    }
    if (*n_tensors > remaining() / kMinTensorInfoBytes) {
      fail_at(kv_at - 8, "tensor_count ", *n_tensors, " is impossible: the remaining ", remaining(),
              " bytes hold at most ", remaining() / kMinTensorInfoBytes, " tensor infos");
    }
  }

  // One value of type `type` (not an array) into v.
  void parse_scalar(ValueType type, Value& v) {
    const uint64_t at = pos;
    if (type == ValueType::STRING) {
      v.string_ = read_string("string value");
      return;
    }
    const std::size_t size = value_type_size(type);
    const uint8_t* p = take(size, "value");
    if (type == ValueType::BOOL) check_bools(p, 1, at);
    v.bytes_.assign(p, p + size);
  }

  void parse_array(Value& v) {
    const uint64_t type_at = pos;
    v.element_type_ = read_value_type("array element type");
    if (v.element_type_ == ValueType::ARRAY) {
      fail_at(type_at, "nested arrays are not supported (array element type is array)");
    }
    const uint64_t length_at = pos;
    const uint64_t n = read<uint64_t>("array length");
    if (v.element_type_ == ValueType::STRING) {
      if (n > remaining() / 8) {
        fail_at(length_at, "array length ", n, " is impossible: each string takes at least 8 ",
                "bytes and only ", remaining(), " bytes remain");
      }
      for (uint64_t i = 0; i < n; ++i) v.strings_.push_back(read_string("array string"));
    } else {
      const std::size_t size = value_type_size(v.element_type_);
      if (n > remaining() / size) {
        fail_at(length_at, "array length ", n, " of ", value_type_name(v.element_type_), " needs ",
                n, " x ", size, " bytes but only ", remaining(), " bytes remain");
      }
      const uint64_t at = pos;
      const uint8_t* p = take(n * size, "array data");
      if (v.element_type_ == ValueType::BOOL) check_bools(p, n, at);
      v.bytes_.assign(p, p + n * size);
    }
    v.count_ = static_cast<std::size_t>(n);
  }

  void parse_metadata(uint64_t n_kv, uint64_t* alignment_at) {
    for (uint64_t i = 0; i < n_kv; ++i) {
      const uint64_t entry_at = pos;
      context = "metadata entry " + std::to_string(i) + " of " + std::to_string(n_kv);
      std::string key = read_string("key");
      if (key.empty()) fail_at(entry_at, "empty metadata key");
      context = "metadata key '" + printable(key) + "'";
      if (file.metadata_.count(key)) {
        fail_at(entry_at, "duplicate metadata key '", printable(key), "'");
      }
      Value v;
      v.where_ = "key '" + printable(key) + "' in GGUF file '" + file.path() + "'";
      v.type_ = read_value_type("value type");
      if (key == "general.alignment") *alignment_at = pos;
      if (v.type_ == ValueType::ARRAY) {
        parse_array(v);
      } else {
        parse_scalar(v.type_, v);
      }
      file.keys_.push_back(key);
      file.metadata_.emplace(std::move(key), std::move(v));
    }
    context.clear();
  }

  void parse_alignment(uint64_t alignment_at) {
    file.alignment_ = kDefaultAlignment;
    const Value* a = file.find("general.alignment");
    if (!a) return;
    if (a->type() != ValueType::UINT32) {
      fail_at(alignment_at, "general.alignment has type ", a->type_description(),
              ", expected uint32");
    }
    const uint64_t alignment = a->as_uint64();
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      fail_at(alignment_at, "general.alignment is ", alignment, ", expected a power of two");
    }
    file.alignment_ = alignment;
  }

  void parse_tensor_infos(uint64_t n_tensors, std::vector<uint64_t>* info_at) {
    for (uint64_t i = 0; i < n_tensors; ++i) {
      const uint64_t at = pos;
      info_at->push_back(at);
      context = "tensor info " + std::to_string(i) + " of " + std::to_string(n_tensors);
      TensorInfo t;
      t.name = read_string("tensor name");
      if (t.name.size() >= kMaxName) {
        fail_at(at, "tensor name '", printable(t.name), "' is ", t.name.size(),
                " bytes long, expected fewer than ", kMaxName, " (GGML_MAX_NAME)");
      }
      context = "tensor info of '" + printable(t.name) + "'";
      if (file.tensor_index_.count(t.name)) {
        fail_at(at, "duplicate tensor name '", printable(t.name), "'");
      }
      const uint64_t dims_at = pos;
      const uint32_t n_dims = read<uint32_t>("n_dims");
      if (n_dims > kMaxDims) {
        fail_at(dims_at, "tensor has ", n_dims, " dimensions, expected at most ", kMaxDims,
                " (GGML_MAX_DIMS)");
      }
      int64_t n_elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const uint64_t dim_at = pos;
        const uint64_t dim = read<uint64_t>("dimension");
        if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          fail_at(dim_at, "dimension ", d, " is ", static_cast<int64_t>(dim),
                  " as int64, expected a non-negative size");
        }
        t.shape.push_back(static_cast<int64_t>(dim));
        if (__builtin_mul_overflow(n_elements, static_cast<int64_t>(dim), &n_elements)) {
          fail_at(dim_at, "shape ", shape_string(t.shape), "... has more than 2^63 elements");
        }
      }
      const uint64_t type_at = pos;
      t.type = static_cast<TensorType>(read<uint32_t>("tensor type"));
      const TypeTraits* tt = traits(t.type);
      if (!tt) {
        fail_at(type_at, tensor_type_name(t.type),
                " (expected a ggml type this reader knows, see docs/gguf.md)");
      }
      const int64_t row = n_dims > 0 ? t.shape[0] : 1;
      if (row % tt->block_size != 0) {
        fail_at(type_at, "shape ", shape_string(t.shape), ": ne[0] = ", row,
                " is not a multiple of the block size ", tt->block_size, " of ", tt->name);
      }
      const uint64_t blocks = static_cast<uint64_t>(n_elements / tt->block_size);
      if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(tt->block_bytes), &t.nbytes)) {
        fail_at(type_at, "shape ", shape_string(t.shape), " of ", tt->name,
                " takes more than 2^64 bytes");
      }
      t.offset = read<uint64_t>("tensor data offset");
      file.tensor_index_.emplace(t.name, file.tensors_.size());
      file.tensors_.push_back(std::move(t));
    }
    context.clear();
  }

  void place_tensors(const std::vector<uint64_t>& info_at) {
    const uint64_t a = file.alignment_;
    if (file.tensors_.empty()) {
      file.data_offset_ = pos;
      return;
    }
    // pos <= size < 2^63, so the rounding cannot overflow.
    file.data_offset_ = (pos + a - 1) / a * a;
    if (file.data_offset_ > file.size()) {
      fail_at(pos, "file truncated: the data section would start at byte ", file.data_offset_,
              " (tensor infos end at byte ", pos, ", alignment ", a, ") but the file has ",
              file.size(), " bytes");
    }
    const uint64_t data_size = file.size() - file.data_offset_;
    for (std::size_t i = 0; i < file.tensors_.size(); ++i) {
      const TensorInfo& t = file.tensors_[i];
      context = "tensor info of '" + printable(t.name) + "'";
      if (t.offset % a != 0) {
        fail_at(info_at[i], "tensor data offset ", t.offset, " is not a multiple of the alignment ",
                a);
      }
      if (t.offset > data_size || t.nbytes > data_size - t.offset) {
        fail_at(info_at[i], "tensor data [", t.offset, ", ", t.offset, " + ", t.nbytes,
                ") of the data section at byte ", file.data_offset_,
                " extends past the end of the file (", file.size(), " bytes)");
      }
    }
    context.clear();
    std::vector<std::size_t> order(file.tensors_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
      return file.tensors_[x].offset < file.tensors_[y].offset;
    });
    const TensorInfo* previous = nullptr;  // the non-empty tensor that ends last so far
    for (std::size_t i : order) {
      const TensorInfo& t = file.tensors_[i];
      if (t.nbytes == 0) continue;
      if (previous && t.offset < previous->offset + previous->nbytes) {
        fail_at(info_at[i], "tensor '", printable(t.name), "' data [", t.offset, ", ",
                t.offset + t.nbytes, ") overlaps tensor '", printable(previous->name), "' data [",
                previous->offset, ", ", previous->offset + previous->nbytes, ")");
      }
      if (!previous || t.offset + t.nbytes > previous->offset + previous->nbytes) previous = &t;
    }
  }

  void parse() {
    uint64_t n_tensors = 0, n_kv = 0;
    parse_header(&n_tensors, &n_kv);
    uint64_t alignment_at = 0;
    parse_metadata(n_kv, &alignment_at);
    parse_alignment(alignment_at);
    std::vector<uint64_t> info_at;
    parse_tensor_infos(n_tensors, &info_at);
    place_tensors(info_at);
  }
};

// ---- File ------------------------------------------------------------------------------------

File File::open(const std::string& path) {
  File file;
  file.map_ = io::MappedFile::open(path, "GGUF file");
  if (file.size() == 0) {
    NPEFF_FAIL("GGUF file '", path, "': byte 0: file is empty, expected a GGUF header");
  }
  Parser(file).parse();  // throws; ~MappedFile unmaps
  return file;
}

const Value* File::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const Value& File::at(const std::string& key) const {
  const Value* v = find(key);
  NPEFF_CHECK(v, "GGUF file '", path(), "' has no metadata key '", key, "'");
  return *v;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  NPEFF_CHECK(t, "GGUF file '", path(), "' has no tensor '", name, "'");
  return *t;
}

const uint8_t* File::tensor_data(const TensorInfo& info) const {
  NPEFF_ASSERT(map_.data() && info.offset <= size() - data_offset_ &&
                   info.nbytes <= size() - data_offset_ - info.offset,
               "tensor '", info.name, "' is not a tensor of GGUF file '", path(), "'");
  return map_.data() + data_offset_ + info.offset;
}

}  // namespace npeff::gguf
