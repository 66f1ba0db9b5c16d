// safetensors reader (include/npeff/io/safetensors.h): round trips of every dtype, exact float32
// conversion (every F16 and BF16 bit pattern), sharded checkpoints, each malformed-file check with
// its message, a file written by the Python safetensors library, and truncation and random
// byte-flip sweeps that must only ever produce npeff::Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/safetensors.h"
#include "unit/safetensors_writer.h"
#include "unit/test_util.h"

namespace {

using npeff::testing::source_dir;

using npeff::Error;
using npeff::safetensors::Checkpoint;
using npeff::safetensors::Dtype;
using npeff::safetensors::File;
using npeff::safetensors::TensorView;
using npeff::safetensors::to_float32;
using npeff::testing::expect_error;
using npeff::testing::SafetensorsWriter;

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

std::vector<uint8_t> iota_bytes(std::size_t n, uint8_t start = 1) {
  std::vector<uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(start + i * 13);
  return out;
}

// Independent reference for binary16: (-1)^s * 2^(e-15) * (1 + m/1024), or 2^-14 * m/1024.
float half_reference(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 31) return static_cast<float>(m ? std::nan("") : sign * INFINITY);
  if (e == 0) return static_cast<float>(sign * std::ldexp(m, -24));
  return static_cast<float>(sign * std::ldexp(1024 + m, e - 25));
}

std::vector<float> floats_of(const TensorView& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  to_float32(t, out.data());
  return out;
}

class SafetensorsTest : public npeff::testing::TempDirTest {
 protected:
  std::string write(const std::vector<uint8_t>& bytes, const std::string& name = "t.safetensors") {
    const std::string p = path(name);
    SafetensorsWriter::write_bytes(p, bytes);
    return p;
  }
  std::string write(const SafetensorsWriter& w, const std::string& name = "t.safetensors") {
    return write(w.build(), name);
  }
  // Expects opening `bytes` to throw npeff::Error mentioning the file and every one of `parts`.
  void expect_open_error(const std::vector<uint8_t>& bytes, std::vector<std::string> parts) {
    const std::string p = write(bytes, "bad.safetensors");
    parts.push_back(p);
    expect_error([&] { File::open(p); }, parts);
  }
  void expect_open_error(const SafetensorsWriter& w, std::vector<std::string> parts) {
    expect_open_error(w.build(), std::move(parts));
  }
  // A file whose only tensor "t" has the JSON entry `entry` (and `nbytes` bytes of data).
  void expect_entry_error(const std::string& entry, std::vector<std::string> parts,
                          std::size_t nbytes = 8) {
    SafetensorsWriter w;
    w.add_raw("t", "F32", {2}, iota_bytes(nbytes)).entry_json(entry);
    parts.push_back("tensor 't'");
    expect_open_error(w, std::move(parts));
  }
};

// ---- Types and round trips ---------------------------------------------------------------------

TEST(SafetensorsTypes, NamesAndSizes) {
  const std::vector<std::tuple<Dtype, std::string, std::size_t>> expected = {
      {Dtype::F64, "F64", 8},   {Dtype::F32, "F32", 4},         {Dtype::F16, "F16", 2},
      {Dtype::BF16, "BF16", 2}, {Dtype::I64, "I64", 8},         {Dtype::I32, "I32", 4},
      {Dtype::I16, "I16", 2},   {Dtype::I8, "I8", 1},           {Dtype::U8, "U8", 1},
      {Dtype::BOOL, "BOOL", 1}, {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1},
      {Dtype::U16, "U16", 2},   {Dtype::U32, "U32", 4},         {Dtype::U64, "U64", 8}};
  for (const auto& [dtype, name, size] : expected) {
    EXPECT_EQ(npeff::safetensors::dtype_name(dtype), name);
    EXPECT_EQ(npeff::safetensors::dtype_size(dtype), size) << name;
  }
}

TEST_F(SafetensorsTest, EveryDtypeRoundTrips) {
  const std::vector<std::pair<std::string, std::size_t>> raw = {
      {"F64", 8},  {"I64", 8},     {"I32", 4},     {"I16", 2}, {"I8", 1},  {"U8", 1},
      {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}};
  SafetensorsWriter w;
  w.set_metadata("format", "pt").set_metadata("note", "a \"quoted\" value");
  // Names deliberately out of alphabetical order: tensors() keeps header order.
  w.add("z.f32", "F32", {2, 3}, {0.f, -1.5f, 3.25f, 1e-3f, -2.5e10f, 0.1f});
  w.add("y.f16", "F16", {4}, {1.f, -0.5f, 65504.f, 0.099975586f});
  w.add("x.bf16", "BF16", {1, 2}, {1.f, -2.5f});
  for (std::size_t i = 0; i < raw.size(); ++i) {
    w.add_raw("raw." + raw[i].first, raw[i].first, {3, 1},
              iota_bytes(3 * raw[i].second, static_cast<uint8_t>(i)));
  }
  w.add("scalar", "F32", {}, {7.f});
  w.add_raw("empty", "F16", {0, 4}, {});
  const File f = File::open(write(w));
  ASSERT_EQ(f.tensors().size(), 3 + raw.size() + 2);
  EXPECT_EQ(f.tensors()[0].name, "z.f32");
  EXPECT_EQ(f.tensors()[1].name, "y.f16");
  EXPECT_EQ(f.tensors()[2].name, "x.bf16");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "a \"quoted\" value");
  EXPECT_EQ(f.data_offset() % 8, 0u);  // the header is padded with spaces

  EXPECT_EQ(floats_of(f.at("z.f32")),
            (std::vector<float>{0.f, -1.5f, 3.25f, 1e-3f, -2.5e10f, 0.1f}));
  EXPECT_EQ(f.at("z.f32").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(floats_of(f.at("y.f16")), (std::vector<float>{1.f, -0.5f, 65504.f, 0.099975586f}));
  EXPECT_EQ(floats_of(f.at("x.bf16")), (std::vector<float>{1.f, -2.5f}));
  uint64_t offset = 24 + 8 + 4;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const TensorView& t = f.at("raw." + raw[i].first);
    EXPECT_EQ(npeff::safetensors::dtype_name(t.dtype), raw[i].first);
    EXPECT_EQ(t.shape, (std::vector<int64_t>{3, 1}));
    EXPECT_EQ(t.numel(), 3);
    EXPECT_EQ(t.begin, offset);
    EXPECT_EQ(t.end, offset + 3 * raw[i].second);
    EXPECT_EQ(t.data, f.at("z.f32").data + t.begin);
    const auto expected = iota_bytes(3 * raw[i].second, static_cast<uint8_t>(i));
    EXPECT_EQ(std::vector<uint8_t>(t.data, t.data + (t.end - t.begin)), expected);
    offset = t.end;
  }
  EXPECT_EQ(f.at("scalar").numel(), 1);
  EXPECT_TRUE(f.at("scalar").shape.empty());
  EXPECT_EQ(floats_of(f.at("scalar")), std::vector<float>{7.f});
  EXPECT_EQ(f.at("empty").numel(), 0);
  EXPECT_EQ(f.at("empty").begin, f.at("empty").end);
  EXPECT_TRUE(floats_of(f.at("empty")).empty());
  EXPECT_EQ(f.find("absent"), nullptr);
  expect_error([&] { f.at("absent"); }, {"no tensor 'absent'", f.path()});
}

TEST_F(SafetensorsTest, F64RoundsToNearestFloat) {
  const std::vector<double> values = {0.1, -1e300, 1e-50, 1.0000000596046448,
                                      3.4028235677973366e38};
  std::vector<uint8_t> bytes(values.size() * 8);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  SafetensorsWriter w;
  w.add_raw("d", "F64", {static_cast<int64_t>(values.size())}, bytes);
  const File f = File::open(write(w));
  const std::vector<float> out = floats_of(f.at("d"));
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(float_bits(out[i]), float_bits(static_cast<float>(values[i]))) << values[i];
  }
}

TEST_F(SafetensorsTest, EveryHalfAndBfloat16PatternIsExact) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  SafetensorsWriter w;
  w.add_bits("h", "F16", {256, 256}, all).add_bits("b", "BF16", {65536}, all);
  const File f = File::open(write(w));
  const std::vector<float> h = floats_of(f.at("h")), b = floats_of(f.at("b"));
  for (uint32_t i = 0; i < 65536; ++i) {
    const float ref = half_reference(static_cast<uint16_t>(i));
    if (std::isnan(ref)) {
      // NaNs keep their sign and payload (as numpy's float16 -> float32 does).
      EXPECT_EQ(float_bits(h[i]), ((i & 0x8000u) << 16) | 0x7f800000u | ((i & 0x3ffu) << 13));
    } else {
      EXPECT_EQ(float_bits(h[i]), float_bits(ref)) << std::hex << "F16 0x" << i;
    }
    EXPECT_EQ(float_bits(b[i]), i << 16) << std::hex << "BF16 0x" << i;
  }
  // Landmarks.
  EXPECT_EQ(h[0x0001], std::ldexp(1.f, -24));
  EXPECT_EQ(h[0x03ff], std::ldexp(1023.f, -24));
  EXPECT_EQ(h[0x0400], std::ldexp(1.f, -14));
  EXPECT_EQ(h[0x7bff], 65504.f);
  EXPECT_EQ(h[0x7c00], INFINITY);
  EXPECT_EQ(h[0xfc00], -INFINITY);
  EXPECT_TRUE(std::isnan(h[0x7e00]));
  EXPECT_TRUE(std::signbit(h[0x8000]) && h[0x8000] == 0.f);
  EXPECT_EQ(b[0x0001], std::ldexp(1.f, -133));  // a float32 subnormal
  EXPECT_EQ(b[0x7f80], INFINITY);
}

TEST(SafetensorsWriterTest, FloatToHalfAndBf16RoundToNearestEven) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const float v = half_reference(static_cast<uint16_t>(i));
    if (std::isnan(v)) continue;
    EXPECT_EQ(npeff::testing::float_to_half_bits(v), i) << i;
  }
  EXPECT_EQ(npeff::testing::float_to_half_bits(65519.f), 0x7bff);
  EXPECT_EQ(npeff::testing::float_to_half_bits(65520.f), 0x7c00);
  EXPECT_EQ(npeff::testing::float_to_half_bits(std::ldexp(1.f, -25)), 0x0000);  // tie -> even
  EXPECT_EQ(npeff::testing::float_to_half_bits(std::ldexp(3.f, -25)), 0x0002);  // tie -> even
  EXPECT_EQ(npeff::testing::float_to_half_bits(1.f + std::ldexp(1.f, -11)), 0x3c00);
  EXPECT_EQ(npeff::testing::float_to_half_bits(1.f + std::ldexp(3.f, -11)), 0x3c02);
  EXPECT_EQ(npeff::testing::float_to_bf16_bits(1.f + std::ldexp(1.f, -8)), 0x3f80);
  EXPECT_EQ(npeff::testing::float_to_bf16_bits(1.f + std::ldexp(3.f, -8)), 0x3f82);
}

TEST_F(SafetensorsTest, ToFloat32RefusesOtherDtypes) {
  SafetensorsWriter w;
  w.add_raw("ids", "I64", {2}, iota_bytes(16));
  const File f = File::open(write(w));
  std::vector<float> out(2);
  expect_error([&] { to_float32(f.at("ids"), out.data()); }, {"tensor 'ids'", "dtype I64"});
}

TEST_F(SafetensorsTest, GapsTrailingBytesAndPaddingAreAccepted) {
  // Gaps [0, 3) and [5, 6), unindexed bytes [7, 10) at the end.
  SafetensorsWriter w;
  w.raw_header = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},)"
                 R"("b":{"dtype":"U8","shape":[1],"data_offsets":[6,7]}})";
  w.trailing = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<uint8_t> bytes = w.build();
  const File f = File::open(write(bytes));
  EXPECT_EQ(f.at("a").data[0], 3);
  EXPECT_EQ(f.at("a").data[1], 4);
  EXPECT_EQ(f.at("b").data[0], 6);
  EXPECT_EQ(f.size(), bytes.size());
  // Leading whitespace and a header padded with many spaces.
  SafetensorsWriter w2;
  w2.raw_header =
      R"(  {"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})" + std::string(100, ' ');
  w2.trailing = {7, 9};
  const File f2 = File::open(write(w2, "padded.safetensors"));
  EXPECT_EQ(f2.at("x").data[1], 9);
  // No tensors at all.
  SafetensorsWriter w3;
  w3.raw_header = "{}";
  EXPECT_TRUE(File::open(write(w3, "empty.safetensors")).tensors().empty());
}

TEST_F(SafetensorsTest, MoveKeepsDataValid) {
  SafetensorsWriter w;
  w.add("a", "F32", {2}, {1.f, 2.f});
  File f = File::open(write(w));
  const uint8_t* data = f.at("a").data;
  File g = std::move(f);
  EXPECT_EQ(g.at("a").data, data);
  File h = File::open(write(w, "other.safetensors"));
  h = std::move(g);
  EXPECT_EQ(floats_of(h.at("a")), (std::vector<float>{1.f, 2.f}));
}

// ---- Malformed files ---------------------------------------------------------------------------

TEST_F(SafetensorsTest, MissingShortAndNonRegularFiles) {
  expect_error([&] { File::open(path("absent.safetensors")); }, {"cannot open", "absent"});
  expect_error([&] { File::open(dir_.string()); }, {"not a regular file"});
  expect_open_error(std::vector<uint8_t>{}, {"byte 0", "0 bytes", "at least 8"});
  expect_open_error(std::vector<uint8_t>(7, 0), {"7 bytes", "at least 8"});
}

TEST_F(SafetensorsTest, BadHeaderLength) {
  SafetensorsWriter w;
  w.add("a", "F32", {1}, {1.f});
  w.header_length = 1000;
  expect_open_error(w, {"byte 0", "header length 1000", "only", "bytes follow"});
  w.header_length = uint64_t{1} << 40;
  expect_open_error(w, {"header length 1099511627776", "exceeds the limit of 100000000"});
  w.header_length = std::numeric_limits<uint64_t>::max();
  expect_open_error(w, {"exceeds the limit"});
}

TEST_F(SafetensorsTest, HeaderNotJsonObject) {
  SafetensorsWriter w;
  w.raw_header = R"({"a": {"dtype": "F32",)";
  expect_open_error(w, {"JSON header (bytes 8..", "not valid JSON", "byte "});
  w.raw_header = "[1, 2]";
  expect_open_error(w, {"header is a JSON array", "expected an object"});
  w.raw_header = std::string("{}\0\0", 4);  // NUL padding is not whitespace
  expect_open_error(w, {"byte 10: NUL byte"});
  w.raw_header = "{\"\xff\":1}";  // not UTF-8
  expect_open_error(w, {"not valid JSON"});
  w.raw_header = std::string(200, '[') + std::string(200, ']');
  expect_open_error(w, {"nested more than 64 levels"});
}

TEST_F(SafetensorsTest, BadEntries) {
  expect_entry_error("5", {"entry is a JSON number (5)", "expected an object"});
  expect_entry_error(R"({"shape":[2],"data_offsets":[0,8]})", {"no \"dtype\""});
  expect_entry_error(R"({"dtype":"F32","data_offsets":[0,8]})", {"no \"shape\""});
  expect_entry_error(R"({"dtype":"F32","shape":[2]})", {"no \"data_offsets\""});
  expect_entry_error(R"({"dtype":"F128","shape":[2],"data_offsets":[0,8]})",
                     {"unknown dtype 'F128'", "expected one of F64, F32"});
  expect_entry_error(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})",
                     {"dtype is a JSON number (4)", "expected a string"});
  expect_entry_error(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})",
                     {"shape is a JSON number (2)", "expected an array"});
  expect_entry_error(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})",
                     {"shape[0] is a JSON number (-2)", "expected a non-negative integer"});
  expect_entry_error(R"({"dtype":"F32","shape":[1,2.0],"data_offsets":[0,8]})",
                     {"shape[1] is a JSON number (2.0)"});
  expect_entry_error(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})",
                     {"shape[0] is a JSON string"});
  expect_entry_error(R"({"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]})",
                     {"shape[0]", "expected a non-negative integer"});
  expect_entry_error(R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]})",
                     {"shape[0] is 9223372036854775808", "expected at most 9223372036854775807"});
  expect_entry_error(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})",
                     {"shape [4294967296, 4294967296]... has more than 2^63 elements"});
  expect_entry_error(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]})",
                     {"of F64 takes more than 2^64 bytes"});
}

TEST_F(SafetensorsTest, BadDataOffsets) {
  expect_entry_error(R"({"dtype":"F32","shape":[2],"data_offsets":8})",
                     {"data_offsets is a JSON number (8)", "expected [begin, end]"});
  expect_entry_error(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4,8]})",
                     {"data_offsets is a JSON array", "expected [begin, end]"});
  expect_entry_error(R"({"dtype":"F32","shape":[2],"data_offsets":[-1,8]})",
                     {"data_offsets[0] (begin) is a JSON number (-1)"});
  expect_entry_error(R"({"dtype":"F32","shape":[2],"data_offsets":[0,"8"]})",
                     {"data_offsets[1] (end) is a JSON string"});
  expect_entry_error(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})",
                     {"data_offsets [8, 0] has begin > end"});
  expect_entry_error(
      R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})",
      {"data_offsets [0, 4] span 4 bytes, expected 8", "shape [2] x 4 bytes of F32"});
  expect_entry_error(R"({"dtype":"F32","shape":[3],"data_offsets":[0,12]})",
                     {"data_offsets [0, 12] end past the data section", "which has", "8 bytes"});
  expect_entry_error(
      R"({"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551616]})",
      {"data_offsets[1] (end)", "non-negative integer"});
}

TEST_F(SafetensorsTest, OverlapsAndDuplicates) {
  SafetensorsWriter w;
  w.add_raw("a", "U8", {4}, iota_bytes(4));
  w.add_raw("b", "U8", {4}, iota_bytes(4))
      .entry_json(R"({"dtype":"U8","shape":[4],"data_offsets":[2,6]})");
  expect_open_error(w, {"tensor 'b'", "data [2, 6) overlaps tensor 'a' data [0, 4)"});
  // Empty tensors overlap nothing.
  SafetensorsWriter ok;
  ok.add_raw("a", "U8", {4}, iota_bytes(4));
  ok.add_raw("e", "U8", {0}, {}).entry_json(R"({"dtype":"U8","shape":[0],"data_offsets":[2,2]})");
  EXPECT_EQ(File::open(write(ok, "ok.safetensors")).tensors().size(), 2u);

  SafetensorsWriter dup;
  dup.raw_header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                   R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  dup.trailing = {1, 2};
  expect_open_error(dup, {"duplicate key 'a'", "tensor name"});
  dup.raw_header = R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  expect_open_error(dup, {"duplicate key 'dtype'", "nested object"});
}

TEST_F(SafetensorsTest, BadMetadata) {
  SafetensorsWriter w;
  w.raw_header = R"({"__metadata__":["a"]})";
  expect_open_error(w, {"__metadata__ is a JSON array", "expected an object of strings"});
  w.raw_header = R"({"__metadata__":{"format":"pt","n":3}})";
  expect_open_error(w, {"__metadata__ value of 'n' is a JSON number (3)", "expected a string"});
  w.raw_header = R"({"__metadata__":{"format":"pt"},"__metadata__":{}})";
  expect_open_error(w, {"duplicate key '__metadata__'"});
}

// ---- Checkpoints -------------------------------------------------------------------------------

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST_F(SafetensorsTest, ShardedCheckpoint) {
  SafetensorsWriter s1, s2;
  s1.add("model.embed", "F32", {2}, {1.f, 2.f}).add("model.norm", "BF16", {1}, {0.5f});
  s2.add("lm_head", "F16", {3}, {1.f, 2.f, 3.f}).add("extra", "U8", {0}, {});
  s1.write(path("model-00001-of-00002.safetensors"));
  s2.write(path("model-00002-of-00002.safetensors"));
  write_text(path("model.safetensors.index.json"), R"({"metadata":{"total_size":18},
    "weight_map":{"model.embed":"model-00001-of-00002.safetensors",
                  "model.norm":"model-00001-of-00002.safetensors",
                  "lm_head":"model-00002-of-00002.safetensors"}})");
  const Checkpoint c = Checkpoint::open_directory(dir_.string());
  EXPECT_EQ(c.source(), dir_.string());
  EXPECT_EQ(c.names(), (std::vector<std::string>{"extra", "lm_head", "model.embed", "model.norm"}));
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(floats_of(c.at("lm_head")), (std::vector<float>{1.f, 2.f, 3.f}));
  EXPECT_EQ(floats_of(c.at("model.norm")), std::vector<float>{0.5f});
  EXPECT_EQ(c.find("nope"), nullptr);
  expect_error([&] { c.at("nope"); }, {"no tensor 'nope'", dir_.string()});
  const Checkpoint moved = Checkpoint::open_directory(dir_.string());
  const Checkpoint m2 = std::move(const_cast<Checkpoint&>(moved));
  EXPECT_EQ(floats_of(m2.at("model.embed")), (std::vector<float>{1.f, 2.f}));

  // A single model.safetensors wins (as in transformers).
  SafetensorsWriter single;
  single.add("only", "F32", {1}, {4.f});
  single.write(path("model.safetensors"));
  EXPECT_EQ(Checkpoint::open_directory(dir_.string()).names(), std::vector<std::string>{"only"});
  EXPECT_EQ(Checkpoint::open_file(path("model.safetensors")).source(), path("model.safetensors"));
}

TEST_F(SafetensorsTest, BadCheckpoints) {
  const std::string index = path("model.safetensors.index.json");
  expect_error([&] { Checkpoint::open_directory(path("absent")); },
               {"model directory", "absent", "not a directory"});
  expect_error([&] { Checkpoint::open_directory(dir_.string()); },
               {"neither model.safetensors nor model.safetensors.index.json"});
  SafetensorsWriter s1, s2;
  s1.add("a", "F32", {1}, {1.f});
  s2.add("a", "F32", {1}, {2.f}).add("b", "F32", {1}, {3.f});
  s1.write(path("s1.safetensors"));
  s2.write(path("s2.safetensors"));
  const auto expect_index_error = [&](const std::string& text, std::vector<std::string> parts) {
    write_text(index, text);
    expect_error([&] { Checkpoint::open_directory(dir_.string()); }, parts);
  };
  expect_index_error("{", {"safetensors index", "not valid JSON"});
  expect_index_error(std::string("{}\0x", 4), {"safetensors index", "byte 2: NUL byte"});
  expect_index_error("[]", {"top level is a JSON array"});
  expect_index_error(R"({"metadata":{}})", {"no \"weight_map\""});
  expect_index_error(R"({"weight_map":[]})", {"weight_map is a JSON array"});
  expect_index_error(R"({"weight_map":{"a":1}})", {"weight_map entry 'a' is a JSON number"});
  expect_index_error(R"({"weight_map":{"a":"../s1.safetensors"}})",
                     {"names shard '../s1.safetensors'", "file name in the index's directory"});
  expect_index_error(R"({"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}})",
                     {"duplicate key 'a'"});
  expect_index_error(R"({"weight_map":{"a":"missing.safetensors"}})",
                     {"cannot open safetensors file", "missing.safetensors"});
  expect_index_error(R"({"weight_map":{"c":"s1.safetensors"}})",
                     {"weight_map puts tensor 'c' in shard 's1.safetensors'", "no such tensor"});
  expect_index_error(R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})",
                     {"tensor 'a' appears in both", "s1.safetensors", "s2.safetensors"});
}

// ---- The Python library's output ---------------------------------------------------------------

TEST(SafetensorsReference, ReadsWhatPythonSafetensorsWrote) {
  const std::string dir = source_dir() + "/tests/fixtures/safetensors/";
  std::ifstream in(dir + "reference.json");
  ASSERT_TRUE(in) << "missing " << dir << "reference.json (set NPEFF_SOURCE_DIR)";
  const nlohmann::json ref = nlohmann::json::parse(in);
  const File f = File::open(dir + "reference.safetensors");
  EXPECT_EQ(f.size(), ref["file_size"].get<uint64_t>());
  EXPECT_EQ(f.data_offset(), 8 + ref["header_length"].get<uint64_t>());
  EXPECT_EQ(f.metadata(), (ref["metadata"].get<std::map<std::string, std::string>>()));
  const auto& tensors = ref["tensors"];
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& r = tensors[i];
    const TensorView& t = f.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, r["name"].get<std::string>());  // header order
    EXPECT_EQ(npeff::safetensors::dtype_name(t.dtype), r["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, r["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.begin, r["data_offsets"][0].get<uint64_t>());
    EXPECT_EQ(t.end, r["data_offsets"][1].get<uint64_t>());
    if (t.dtype == Dtype::I64) {
      std::vector<int64_t> v(static_cast<std::size_t>(t.numel()));
      std::memcpy(v.data(), t.data, v.size() * 8);
      EXPECT_EQ(v, r["values"].get<std::vector<int64_t>>());
      continue;
    }
    const std::vector<float> v = floats_of(t);
    const auto values = r["values"].get<std::vector<double>>();
    const auto bits = r["bits"].get<std::vector<uint32_t>>();
    ASSERT_EQ(v.size(), values.size());
    for (std::size_t j = 0; j < v.size(); ++j) {
      EXPECT_EQ(v[j], static_cast<float>(values[j])) << j;
      uint32_t raw = 0;
      std::memcpy(&raw, t.data + j * npeff::safetensors::dtype_size(t.dtype),
                  npeff::safetensors::dtype_size(t.dtype));
      EXPECT_EQ(raw, bits[j]) << j;
    }
  }
}

// ---- Sweeps ------------------------------------------------------------------------------------

// Opens `p` and, when that succeeds, touches every tensor (for ASan). Returns false when opening
// threw npeff::Error; any other exception fails the test.
bool open_and_touch(const std::string& p) {
  try {
    const File f = File::open(p);
    double sink = 0;
    for (const TensorView& t : f.tensors()) {
      if (t.end > t.begin) sink += t.data[0] + t.data[t.end - t.begin - 1];
      if (t.dtype == Dtype::F32 || t.dtype == Dtype::F16 || t.dtype == Dtype::BF16 ||
          t.dtype == Dtype::F64) {
        for (const float v : floats_of(t)) sink += std::isfinite(v) ? 0 : 1;
      }
    }
    for (const auto& [k, v] : f.metadata()) sink += static_cast<double>(k.size() + v.size());
    EXPECT_GE(sink, 0);
    return true;
  } catch (const npeff::Error&) {
    return false;
  }
}

SafetensorsWriter sweep_writer() {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add("w", "F32", {2, 2}, {1.f, -2.f, 3.f, 4.5f}).add("h", "F16", {3}, {1.f, 0.5f, -0.25f});
  w.add("b", "BF16", {2}, {8.f, -1.f}).add_raw("ids", "I64", {2}, iota_bytes(16));
  w.add_raw("d", "F64", {1}, iota_bytes(8));
  return w;
}

TEST_F(SafetensorsTest, EveryTruncationThrows) {
  const std::vector<uint8_t> bytes = sweep_writer().build();
  ASSERT_TRUE(open_and_touch(write(bytes, "full.safetensors")));
  const std::string p = path("prefix.safetensors");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    SafetensorsWriter::write_bytes(p, std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
    EXPECT_FALSE(open_and_touch(p))
        << "a prefix of " << n << " of " << bytes.size() << " bytes opened";
  }
}

TEST_F(SafetensorsTest, RandomByteFlips) {
  uint32_t seed = std::random_device{}();
  if (const char* s = std::getenv("NPEFF_SAFETENSORS_FUZZ_SEED")) {
    seed = static_cast<uint32_t>(std::strtoul(s, nullptr, 10));
  }
  std::cout << "[ safetensors fuzz ] seed " << seed
            << " (rerun with NPEFF_SAFETENSORS_FUZZ_SEED=" << seed << ")" << std::endl;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const SafetensorsWriter w = sweep_writer();
  const std::vector<uint8_t> bytes = w.build();
  const std::size_t header_end = 8 + w.header().size();
  const std::string p = path("flipped.safetensors");
  std::uniform_int_distribution<std::size_t> header_pos(0, header_end - 1);
  std::uniform_int_distribution<std::size_t> any_pos(0, bytes.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255), flips(1, 4), coin(0, 3);
  const std::string interesting = "{}[],:\"0123456789-.eE ";
  int opened = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> m = bytes;
    const int n = flips(rng);
    for (int j = 0; j < n; ++j) {
      const std::size_t at = coin(rng) ? header_pos(rng) : any_pos(rng);
      switch (coin(rng)) {
        case 0:
          m[at] = static_cast<uint8_t>(byte(rng));
          break;
        case 1:
          m[at] = static_cast<uint8_t>(
              interesting[static_cast<std::size_t>(byte(rng)) % interesting.size()]);
          break;
        default:
          m[at] = static_cast<uint8_t>(m[at] ^ (1u << (byte(rng) % 8)));
      }
    }
    if (coin(rng) == 0) m.resize(any_pos(rng));
    SafetensorsWriter::write_bytes(p, m);
    opened += open_and_touch(p);
  }
  std::cout << "[ safetensors fuzz ] " << opened << " of 2000 mutants opened" << std::endl;
}

}  // namespace
