// safetensors reader: see include/npeff/io/safetensors.h. No LibTorch or HDF5 here.
#include "npeff/io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>
#include <utility>

#include "io/half_float.h"
#include "io/printable.h"
#include "npeff/core/error.h"

namespace npeff::safetensors {

namespace {

using json = nlohmann::json;

// The reference (Rust) reader's limit on the JSON header: refuse absurd lengths before reading.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Tensor entries nest 3 deep; anything much deeper is not a safetensors header.
constexpr int kMaxJsonDepth = 64;

struct DtypeRow {
  Dtype dtype;
  const char* name;
  std::size_t size;
};
constexpr DtypeRow kDtypes[] = {
    {Dtype::F64, "F64", 8},   {Dtype::F32, "F32", 4},         {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2}, {Dtype::I64, "I64", 8},         {Dtype::I32, "I32", 4},
    {Dtype::I16, "I16", 2},   {Dtype::I8, "I8", 1},           {Dtype::U8, "U8", 1},
    {Dtype::BOOL, "BOOL", 1}, {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1},
    {Dtype::U16, "U16", 2},   {Dtype::U32, "U32", 4},         {Dtype::U64, "U64", 8},
};

const DtypeRow* dtype_row(Dtype dtype) {
  for (const DtypeRow& row : kDtypes) {
    if (row.dtype == dtype) return &row;
  }
  return nullptr;
}

std::string known_dtypes() {
  std::string out;
  for (const DtypeRow& row : kDtypes) out += (out.empty() ? "" : ", ") + std::string(row.name);
  return out;
}

// Names and keys are JSON strings (valid UTF-8): keep non-ASCII characters readable.
std::string printable(const std::string& s) {
  return io_detail::printable(s, io_detail::NonAscii::kKeep);
}

// A JSON value for a message: its type and (short) text.
std::string describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 60) + "...";
  return std::string("a JSON ") + v.type_name() + " (" + text + ")";
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// Parses `text` as JSON. Refuses duplicate keys in any object (nlohmann would keep the last one
// silently) and nesting deeper than kMaxJsonDepth. `root_keys` receives the top-level object's
// keys in document order. Errors are npeff::Error starting with `where` and, for syntax errors,
// the byte offset `base` + the position in `text`.
json parse_json(const char* begin, const char* end, uint64_t base, const std::string& where,
                std::vector<std::string>* root_keys) {
  // nlohmann's parser takes a NUL byte for the end of the input (and would ignore what follows);
  // valid JSON never holds a raw NUL (and a safetensors header is padded with spaces).
  if (const void* nul = std::memchr(begin, 0, static_cast<std::size_t>(end - begin))) {
    NPEFF_FAIL(where, ": byte ",
               base + static_cast<uint64_t>(static_cast<const char*>(nul) - begin),
               ": NUL byte, expected JSON text (padded with spaces)");
  }
  std::vector<std::set<std::string>> open_objects;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        NPEFF_CHECK(depth < kMaxJsonDepth, where, ": JSON nested more than ", kMaxJsonDepth,
                    " levels deep, expected a flat safetensors header");
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (open_objects.size() == 1 && root_keys) root_keys->push_back(key);
        if (!open_objects.empty() && !open_objects.back().insert(key).second) {
          const bool top = open_objects.size() == 1;
          NPEFF_FAIL(where, ": duplicate key '", printable(key), "'",
                     top ? " at the top level" : " in a nested object",
                     top && root_keys ? " (a tensor name given twice)" : "",
                     ", expected unique keys");
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, callback);
  } catch (const json::parse_error& e) {
    const uint64_t at = base + (e.byte > 0 ? e.byte - 1 : 0);
    NPEFF_FAIL(where, ": byte ", at, ": not valid JSON: ", e.what());
  } catch (const json::exception& e) {
    NPEFF_FAIL(where, ": not valid JSON: ", e.what());
  }
}

}  // namespace

const char* dtype_name(Dtype dtype) {
  const DtypeRow* row = dtype_row(dtype);
  return row ? row->name : "invalid";
}

std::size_t dtype_size(Dtype dtype) {
  const DtypeRow* row = dtype_row(dtype);
  return row ? row->size : 0;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    NPEFF_CHECK(d >= 0 && !__builtin_mul_overflow(n, d, &n), "tensor '", printable(name),
                "': shape ", shape_string(shape), " is invalid or has more than 2^63 elements");
  }
  return n;
}

// ---- Parsing ---------------------------------------------------------------------------------

struct HeaderParser {
  File& file;
  std::string where;  // "safetensors file 'p': JSON header (bytes 8..N)"

  template <typename... Args>
  [[noreturn]] void fail_tensor(const std::string& name, const Args&... args) const {
    NPEFF_FAIL(where, ": tensor '", printable(name), "': ", args...);
  }

  uint64_t read_uint(const json& v, const std::string& name, const std::string& what,
                     uint64_t max) const {
    if (!v.is_number_unsigned()) {
      fail_tensor(name, what, " is ", describe(v), ", expected a non-negative integer");
    }
    const uint64_t u = v.get<uint64_t>();
    if (u > max) fail_tensor(name, what, " is ", u, ", expected at most ", max);
    return u;
  }

  const json& field(const json& entry, const char* key, const std::string& name) const {
    auto it = entry.find(key);
    if (it == entry.end()) {
      fail_tensor(name, "entry has no \"", key, "\", expected \"dtype\", \"shape\" and ",
                  "\"data_offsets\"");
    }
    return *it;
  }

  Dtype read_dtype(const json& v, const std::string& name) const {
    if (!v.is_string()) fail_tensor(name, "dtype is ", describe(v), ", expected a string");
    const std::string& s = v.get_ref<const std::string&>();
    for (const DtypeRow& row : kDtypes) {
      if (s == row.name) return row.dtype;
    }
    fail_tensor(name, "unknown dtype '", printable(s), "', expected one of ", known_dtypes());
  }

  void read_metadata(const json& v) {
    if (!v.is_object()) {
      NPEFF_FAIL(where, ": __metadata__ is ", describe(v), ", expected an object of strings");
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it->is_string()) {
        NPEFF_FAIL(where, ": __metadata__ value of '", printable(it.key()), "' is ", describe(*it),
                   ", expected a string");
      }
      file.metadata_.emplace(it.key(), it->get<std::string>());
    }
  }

  TensorView read_tensor(const std::string& name, const json& entry, uint64_t data_size) const {
    if (!entry.is_object()) {
      fail_tensor(name, "entry is ", describe(entry), ", expected an object with \"dtype\", ",
                  "\"shape\" and \"data_offsets\"");
    }
    TensorView t;
    t.name = name;
    t.dtype = read_dtype(field(entry, "dtype", name), name);
    const json& shape = field(entry, "shape", name);
    if (!shape.is_array()) fail_tensor(name, "shape is ", describe(shape), ", expected an array");
    int64_t numel = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      const uint64_t d = read_uint(shape[i], name, "shape[" + std::to_string(i) + "]",
                                   static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
      t.shape.push_back(static_cast<int64_t>(d));
      if (__builtin_mul_overflow(numel, static_cast<int64_t>(d), &numel)) {
        fail_tensor(name, "shape ", shape_string(t.shape), "... has more than 2^63 elements");
      }
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), dtype_size(t.dtype), &nbytes)) {
      fail_tensor(name, "shape ", shape_string(t.shape), " of ", dtype_name(t.dtype),
                  " takes more than 2^64 bytes");
    }
    const json& offsets = field(entry, "data_offsets", name);
    if (!offsets.is_array() || offsets.size() != 2) {
      fail_tensor(name, "data_offsets is ", describe(offsets), ", expected [begin, end]");
    }
    const uint64_t u64_max = std::numeric_limits<uint64_t>::max();
    t.begin = read_uint(offsets[0], name, "data_offsets[0] (begin)", u64_max);
    t.end = read_uint(offsets[1], name, "data_offsets[1] (end)", u64_max);
    if (t.begin > t.end) {
      fail_tensor(name, "data_offsets [", t.begin, ", ", t.end, "] has begin > end, expected ",
                  "begin <= end");
    }
    if (t.end - t.begin != nbytes) {
      fail_tensor(name, "data_offsets [", t.begin, ", ", t.end, "] span ", t.end - t.begin,
                  " bytes, expected ", nbytes, " (shape ", shape_string(t.shape), " x ",
                  dtype_size(t.dtype), " bytes of ", dtype_name(t.dtype), ")");
    }
    if (t.end > data_size) {
      fail_tensor(name, "data_offsets [", t.begin, ", ", t.end,
                  "] end past the data section: bytes [", file.data_offset_ + t.begin, ", ",
                  file.data_offset_ + t.end, ") of the file, which has ", file.size(),
                  " bytes (data section: ", data_size, " bytes from byte ", file.data_offset_, ")");
    }
    t.data = file.map_.data() + file.data_offset_ + t.begin;
    return t;
  }

  void check_overlaps() const {
    const std::vector<TensorView>& ts = file.tensors_;
    std::vector<std::size_t> order(ts.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t x, std::size_t y) { return ts[x].begin < ts[y].begin; });
    const TensorView* previous = nullptr;  // the non-empty tensor that ends last so far
    for (std::size_t i : order) {
      const TensorView& t = ts[i];
      if (t.begin == t.end) continue;
      if (previous && t.begin < previous->end) {
        fail_tensor(t.name, "data [", t.begin, ", ", t.end, ") overlaps tensor '",
                    printable(previous->name), "' data [", previous->begin, ", ", previous->end,
                    "), expected disjoint byte ranges");
      }
      if (!previous || t.end > previous->end) previous = &t;
    }
  }

  void parse() {
    const std::string& path = file.path();
    uint64_t header_len;
    std::memcpy(&header_len, file.map_.data(), sizeof(header_len));
    if (header_len > kMaxHeaderBytes) {
      NPEFF_FAIL("safetensors file '", path, "': byte 0: header length ", header_len,
                 " exceeds the limit of ", kMaxHeaderBytes, " bytes (not a safetensors file?)");
    }
    if (header_len > file.size() - 8) {
      NPEFF_FAIL("safetensors file '", path, "': byte 0: header length ", header_len, " but only ",
                 file.size() - 8, " bytes follow (file size ", file.size(), ")");
    }
    file.data_offset_ = 8 + header_len;
    where = "safetensors file '" + path + "': JSON header (bytes 8.." +
            std::to_string(file.data_offset_) + ")";
    const char* text = reinterpret_cast<const char*>(file.map_.data() + 8);
    std::vector<std::string> keys;
    const json root = parse_json(text, text + header_len, 8, where, &keys);
    if (!root.is_object())
      NPEFF_FAIL(where, ": header is ", describe(root), ", expected an object");
    const uint64_t data_size = file.size() - file.data_offset_;
    file.tensors_.reserve(keys.size());
    for (const std::string& key : keys) {
      const json& v = root.at(key);
      if (key == "__metadata__") {
        read_metadata(v);
        continue;
      }
      file.index_.emplace(key, file.tensors_.size());
      file.tensors_.push_back(read_tensor(key, v, data_size));
    }
    check_overlaps();
  }
};

// ---- File ------------------------------------------------------------------------------------

File File::open(const std::string& path) {
  File file;
  file.map_ = io::MappedFile::open(path, "safetensors file");
  if (file.size() < 8) {
    NPEFF_FAIL("safetensors file '", path, "': byte 0: file has ", file.size(),
               " bytes, expected at least 8 (the header length)");
  }
  HeaderParser{file, {}}.parse();  // throws; ~MappedFile unmaps
  return file;
}

const TensorView* File::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& File::at(const std::string& name) const {
  const TensorView* t = find(name);
  NPEFF_CHECK(t, "safetensors file '", path(), "' has no tensor '", printable(name), "'");
  return *t;
}

// ---- Checkpoint ------------------------------------------------------------------------------

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr uint64_t kMaxIndexBytes = 100'000'000;

// weight_map of model.safetensors.index.json: tensor name -> shard file name (in the directory).
std::map<std::string, std::string> read_weight_map(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NPEFF_CHECK(in, "cannot open safetensors index '", path, "': ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(std::max<std::streamoff>(in.tellg(), 0));
  NPEFF_CHECK(size <= kMaxIndexBytes, "safetensors index '", path, "' has ", size,
              " bytes, expected at most ", kMaxIndexBytes);
  in.seekg(0);
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  NPEFF_CHECK(in, "cannot read safetensors index '", path, "'");
  const std::string where = "safetensors index '" + path + "'";
  const json root = parse_json(text.data(), text.data() + text.size(), 0, where, nullptr);
  NPEFF_CHECK(root.is_object(), where, ": top level is ", describe(root), ", expected an object");
  auto wm = root.find("weight_map");
  NPEFF_CHECK(wm != root.end(), where, ": no \"weight_map\", expected an object mapping ",
              "tensor names to shard files");
  NPEFF_CHECK(wm->is_object(), where, ": weight_map is ", describe(*wm), ", expected an object");
  std::map<std::string, std::string> out;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    NPEFF_CHECK(it->is_string(), where, ": weight_map entry '", printable(it.key()), "' is ",
                describe(*it), ", expected a shard file name");
    const std::string& shard = it->get_ref<const std::string&>();
    NPEFF_CHECK(!shard.empty() && shard != "." && shard != ".." &&
                    shard.find('/') == std::string::npos && shard.find('\\') == std::string::npos,
                where, ": weight_map entry '", printable(it.key()), "' names shard '",
                printable(shard), "', expected a file name in the index's directory");
    out.emplace(it.key(), shard);
  }
  return out;
}

}  // namespace

void Checkpoint::add_file(File file) {
  files_.push_back(std::move(file));
  const File& f = files_.back();
  for (const TensorView& t : f.tensors()) {
    auto [it, inserted] = index_.emplace(t.name, &t);
    if (!inserted) {
      const std::string* other = nullptr;
      for (const File& g : files_) {
        if (g.find(t.name) == it->second) other = &g.path();
      }
      NPEFF_FAIL("checkpoint '", source_, "': tensor '", printable(t.name), "' appears in both '",
                 other ? *other : std::string("?"), "' and '", f.path(),
                 "', expected each tensor in one shard");
    }
  }
}

Checkpoint Checkpoint::open_file(const std::string& path) {
  Checkpoint c;
  c.source_ = path;
  c.add_file(File::open(path));
  return c;
}

Checkpoint Checkpoint::open_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  NPEFF_CHECK(fs::is_directory(dir, ec), "model directory '", dir,
              "' does not exist or is not a directory");
  const fs::path single = fs::path(dir) / kSingleFile;
  if (fs::exists(single, ec)) {
    Checkpoint c = open_file(single.string());
    c.source_ = dir;
    return c;
  }
  const fs::path index = fs::path(dir) / kIndexFile;
  NPEFF_CHECK(fs::exists(index, ec), "model directory '", dir, "' has neither ", kSingleFile,
              " nor ", kIndexFile);
  const std::map<std::string, std::string> weight_map = read_weight_map(index.string());
  Checkpoint c;
  c.source_ = dir;
  std::set<std::string> shards;
  for (const auto& entry : weight_map) shards.insert(entry.second);
  std::map<std::string, std::size_t> shard_file;  // shard name -> index in files_
  for (const std::string& shard : shards) {
    shard_file.emplace(shard, c.files_.size());
    c.add_file(File::open((fs::path(dir) / shard).string()));
  }
  for (const auto& [name, shard] : weight_map) {
    const File& f = c.files_[shard_file.at(shard)];
    NPEFF_CHECK(f.find(name), "safetensors index '", index.string(), "': weight_map puts tensor '",
                printable(name), "' in shard '", printable(shard), "', but '", f.path(),
                "' has no such tensor");
  }
  return c;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& entry : index_) out.push_back(entry.first);
  return out;
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::at(const std::string& name) const {
  const TensorView* t = find(name);
  NPEFF_CHECK(t, "checkpoint '", source_, "' has no tensor '", printable(name), "'");
  return *t;
}

// ---- Conversion ------------------------------------------------------------------------------

void to_float32(const TensorView& t, float* out) {
  const int64_t n = t.numel();
  NPEFF_ASSERT(n == 0 || (t.data && out), "tensor '", t.name, "': null data or output");
  const uint8_t* p = t.data;
  switch (t.dtype) {
    case Dtype::F32:
      if (n > 0) std::memcpy(out, p, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case Dtype::F16:
      for (int64_t i = 0; i < n; ++i)
        out[i] = io_detail::half_to_float(io_detail::load_u16(p + 2 * i));
      return;
    case Dtype::BF16:
      for (int64_t i = 0; i < n; ++i)
        out[i] = io_detail::bf16_to_float(io_detail::load_u16(p + 2 * i));
      return;
    case Dtype::F64:
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, p + 8 * i, sizeof(v));
        out[i] = static_cast<float>(v);
      }
      return;
    default:
      NPEFF_FAIL("tensor '", printable(t.name), "' has dtype ", dtype_name(t.dtype),
                 "; only F64, F32, F16 and BF16 tensors convert to float32");
  }
}

}  // namespace npeff::safetensors
