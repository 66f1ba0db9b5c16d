// A minimal safetensors writer for tests (header-only): builds files byte by byte so that tests
// can check the reader (include/npeff/io/safetensors.h) on valid and deliberately broken files,
// and write small checkpoints for model tests. Not a library writer: no validation.
//
//   npeff::testing::SafetensorsWriter w;
//   w.add("model.norm.weight", "F32", {4}, {1.f, 2.f, 3.f, 4.f})      // floats -> F32/F16/BF16
//       .add_raw("ids", "I64", {2}, bytes)                             // any dtype, raw bytes
//       .set_metadata("format", "pt");
//   w.write(path);
//
// Layout (as the reference writer does): 8-byte little-endian header length, the JSON header
// (__metadata__ first when set, then tensors in insertion order) padded with spaces to a multiple
// of 8 bytes, then the tensors' bytes back to back in insertion order. Overrides for broken files:
// `entry_json` replaces a tensor's JSON entry, `raw_header` the whole header, `header_length`
// the length field.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "unit/file_bytes.h"

namespace npeff::testing {

/// float -> IEEE binary16 bits, round to nearest even (NaN stays NaN, quiet).
inline uint16_t float_to_half_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: infinity
  if (ax < 0x38800000u) {  // below 2^-14: a multiple of 2^-24 (may round up to 0x0400)
    float a;
    std::memcpy(&a, &ax, sizeof(a));
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0)));
  }
  uint32_t r = ax - 0x38000000u;  // exponent bias 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

/// float -> bfloat16 bits, round to nearest even (NaN stays NaN, quiet).
inline uint16_t float_to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/// A JSON string literal (quotes, backslashes and control characters escaped).
inline std::string json_quote(const std::string& s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

class SafetensorsWriter {
 public:
  /// `values` converted to `dtype` ("F32", "F16" or "BF16"; F16/BF16 rounded to nearest even).
  SafetensorsWriter& add(const std::string& name, const std::string& dtype,
                         const std::vector<int64_t>& shape, const std::vector<float>& values) {
    std::vector<uint8_t> bytes;
    for (const float v : values) {
      if (dtype == "F32") {
        put(bytes, v);
      } else if (dtype == "F16") {
        put(bytes, float_to_half_bits(v));
      } else if (dtype == "BF16") {
        put(bytes, float_to_bf16_bits(v));
      } else {
        throw std::invalid_argument("SafetensorsWriter::add: float dtype expected, got " + dtype);
      }
    }
    return add_raw(name, dtype, shape, bytes);
  }
  /// 16-bit patterns as F16 or BF16 data.
  SafetensorsWriter& add_bits(const std::string& name, const std::string& dtype,
                              const std::vector<int64_t>& shape,
                              const std::vector<uint16_t>& bits) {
    std::vector<uint8_t> bytes;
    for (const uint16_t b : bits) put(bytes, b);
    return add_raw(name, dtype, shape, bytes);
  }
  /// Any dtype string (even invalid ones) with raw little-endian bytes.
  SafetensorsWriter& add_raw(const std::string& name, const std::string& dtype,
                             const std::vector<int64_t>& shape, const std::vector<uint8_t>& bytes) {
    tensors_.push_back(Tensor{name, dtype, shape, bytes, std::nullopt});
    return *this;
  }
  /// Replaces the JSON entry (the value after "name":) of the last added tensor; its bytes are
  /// still written to the data section.
  SafetensorsWriter& entry_json(const std::string& json) {
    if (tensors_.empty()) throw std::logic_error("entry_json: no tensor yet");
    tensors_.back().entry = json;
    return *this;
  }
  SafetensorsWriter& set_metadata(const std::string& key, const std::string& value) {
    metadata_[key] = value;
    return *this;
  }

  // ---- Overrides for malformed files ----
  std::optional<std::string> raw_header;  // the whole JSON header text (no padding added)
  std::optional<uint64_t> header_length;  // the length field
  std::vector<uint8_t> trailing;          // extra bytes after the data section
  bool pad = true;                        // pad the header with spaces to a multiple of 8

  /// The JSON header text (without padding).
  std::string header() const {
    if (raw_header) return *raw_header;
    std::string h = "{";
    bool first = true;
    if (!metadata_.empty()) {
      h += "\"__metadata__\":{";
      bool first_kv = true;
      for (const auto& [k, v] : metadata_) {
        h += (first_kv ? "" : ",") + json_quote(k) + ":" + json_quote(v);
        first_kv = false;
      }
      h += "}";
      first = false;
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      h += (first ? "" : ",") + json_quote(t.name) + ":";
      first = false;
      if (t.entry) {
        h += *t.entry;
      } else {
        h += "{\"dtype\":" + json_quote(t.dtype) + ",\"shape\":[";
        for (std::size_t i = 0; i < t.shape.size(); ++i) {
          h += (i ? "," : "") + std::to_string(t.shape[i]);
        }
        h += "],\"data_offsets\":[" + std::to_string(offset) + "," +
             std::to_string(offset + t.bytes.size()) + "]}";
      }
      offset += t.bytes.size();
    }
    return h + "}";
  }

  std::vector<uint8_t> build() const {
    std::string h = header();
    if (pad && !raw_header) h.append((8 - h.size() % 8) % 8, ' ');
    std::vector<uint8_t> out;
    put(out, header_length ? *header_length : static_cast<uint64_t>(h.size()));
    out.insert(out.end(), h.begin(), h.end());
    for (const Tensor& t : tensors_) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    out.insert(out.end(), trailing.begin(), trailing.end());
    return out;
  }

  void write(const std::string& path) const { npeff::testing::write_bytes(path, build()); }

  // Kept as a member so that callers can write SafetensorsWriter::write_bytes (test_safetensors).
  static void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    npeff::testing::write_bytes(path, bytes);
  }

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
    std::optional<std::string> entry;
  };

  template <typename T>
  static void put(std::vector<uint8_t>& out, T value) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    out.insert(out.end(), raw, raw + sizeof(T));
  }

  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace npeff::testing
