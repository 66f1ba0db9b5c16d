// GGUF reader (include/npeff/io/gguf.h): round trips of every value and array type, tensor
// layout and alignment, each malformed-file check with its message, and truncation and
// byte-mutation sweeps that must only ever produce npeff::Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "unit/gguf_writer.h"
#include "unit/test_util.h"

namespace {

using npeff::Error;
using npeff::gguf::File;
using npeff::gguf::TensorInfo;
using npeff::gguf::TensorType;
using npeff::gguf::Value;
using npeff::gguf::ValueType;
using npeff::testing::expect_error;
using npeff::testing::GgufBytes;
using npeff::testing::GgufWriter;

std::vector<uint8_t> iota_bytes(std::size_t n, uint8_t start = 0) {
  std::vector<uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(start + i * 7);
  return out;
}

// Header bytes for hand-made files: magic, version, tensor_count, kv_count.
GgufBytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  GgufBytes b;
  b.raw({'G', 'G', 'U', 'F'}).u32(version).u64(n_tensors).u64(n_kv);
  return b;
}

class GgufTest : public npeff::testing::TempDirTest {
 protected:
  std::string write(const std::vector<uint8_t>& bytes, const std::string& name = "t.gguf") {
    const std::string p = path(name);
    GgufWriter::write_bytes(p, bytes);
    return p;
  }
  std::string write(const GgufWriter& w, const std::string& name = "t.gguf") {
    return write(w.build(), name);
  }
  // Expects opening `bytes` to throw npeff::Error mentioning the file and every one of `parts`.
  void expect_open_error(const std::vector<uint8_t>& bytes, std::vector<std::string> parts) {
    const std::string p = write(bytes, "bad.gguf");
    parts.push_back(p);
    expect_error([&] { File::open(p); }, parts);
  }
  void expect_open_error(const GgufWriter& w, std::vector<std::string> parts) {
    expect_open_error(w.build(), std::move(parts));
  }
};

// A file exercising every value type, arrays, and several tensor types.
GgufWriter rich_writer() {
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

// ---- Type tables -----------------------------------------------------------------------------

TEST(GgufTypes, ValueTypeNamesAndSizes) {
  EXPECT_STREQ(npeff::gguf::value_type_name(ValueType::UINT8), "uint8");
  EXPECT_STREQ(npeff::gguf::value_type_name(ValueType::FLOAT64), "float64");
  EXPECT_STREQ(npeff::gguf::value_type_name(ValueType::ARRAY), "array");
  EXPECT_STREQ(npeff::gguf::value_type_name(static_cast<ValueType>(13)), "invalid");
  EXPECT_EQ(npeff::gguf::value_type_size(ValueType::BOOL), 1u);
  EXPECT_EQ(npeff::gguf::value_type_size(ValueType::INT16), 2u);
  EXPECT_EQ(npeff::gguf::value_type_size(ValueType::FLOAT32), 4u);
  EXPECT_EQ(npeff::gguf::value_type_size(ValueType::UINT64), 8u);
  EXPECT_EQ(npeff::gguf::value_type_size(ValueType::STRING), 0u);
}

TEST(GgufTypes, TensorTypeTable) {
  struct Row {
    TensorType type;
    uint32_t number;
    const char* name;
    int64_t block_size, block_bytes;
  };
  // Numbers from ggml/include/ggml.h, layouts from ggml/src/ggml-common.h (docs/gguf.md).
  const Row rows[] = {
      {TensorType::F32, 0, "F32", 1, 4},
      {TensorType::F16, 1, "F16", 1, 2},
      {TensorType::Q4_0, 2, "Q4_0", 32, 18},
      {TensorType::Q4_1, 3, "Q4_1", 32, 20},
      {TensorType::Q5_0, 6, "Q5_0", 32, 22},
      {TensorType::Q5_1, 7, "Q5_1", 32, 24},
      {TensorType::Q8_0, 8, "Q8_0", 32, 34},
      {TensorType::Q8_1, 9, "Q8_1", 32, 36},
      {TensorType::Q2_K, 10, "Q2_K", 256, 84},
      {TensorType::Q3_K, 11, "Q3_K", 256, 110},
      {TensorType::Q4_K, 12, "Q4_K", 256, 144},
      {TensorType::Q5_K, 13, "Q5_K", 256, 176},
      {TensorType::Q6_K, 14, "Q6_K", 256, 210},
      {TensorType::Q8_K, 15, "Q8_K", 256, 292},
      {TensorType::IQ2_XXS, 16, "IQ2_XXS", 256, 66},
      {TensorType::IQ2_XS, 17, "IQ2_XS", 256, 74},
      {TensorType::IQ3_XXS, 18, "IQ3_XXS", 256, 98},
      {TensorType::IQ1_S, 19, "IQ1_S", 256, 50},
      {TensorType::IQ4_NL, 20, "IQ4_NL", 32, 18},
      {TensorType::IQ3_S, 21, "IQ3_S", 256, 110},
      {TensorType::IQ2_S, 22, "IQ2_S", 256, 82},
      {TensorType::IQ4_XS, 23, "IQ4_XS", 256, 136},
      {TensorType::I8, 24, "I8", 1, 1},
      {TensorType::I16, 25, "I16", 1, 2},
      {TensorType::I32, 26, "I32", 1, 4},
      {TensorType::I64, 27, "I64", 1, 8},
      {TensorType::F64, 28, "F64", 1, 8},
      {TensorType::IQ1_M, 29, "IQ1_M", 256, 56},
      {TensorType::BF16, 30, "BF16", 1, 2},
      {TensorType::TQ1_0, 34, "TQ1_0", 256, 54},
      {TensorType::TQ2_0, 35, "TQ2_0", 256, 66},
      {TensorType::MXFP4, 39, "MXFP4", 32, 17},
      {TensorType::NVFP4, 40, "NVFP4", 64, 36},
      {TensorType::Q1_0, 41, "Q1_0", 128, 18},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(static_cast<uint32_t>(r.type), r.number);
    EXPECT_TRUE(npeff::gguf::is_known_tensor_type(r.type));
    EXPECT_EQ(npeff::gguf::tensor_type_name(r.type), r.name);
    EXPECT_EQ(npeff::gguf::tensor_type_block_size(r.type), r.block_size);
    EXPECT_EQ(npeff::gguf::tensor_type_block_bytes(r.type), r.block_bytes);
  }
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 42u, 1000u}) {
    const auto t = static_cast<TensorType>(removed);
    EXPECT_FALSE(npeff::gguf::is_known_tensor_type(t));
    EXPECT_EQ(npeff::gguf::tensor_type_name(t), "unknown ggml type " + std::to_string(removed));
    expect_error([&] { npeff::gguf::tensor_type_block_size(t); },
                 {"unknown ggml type " + std::to_string(removed)});
  }
}

// ---- Round trips -----------------------------------------------------------------------------

TEST_F(GgufTest, ScalarsRoundTrip) {
  const File f = File::open(write(rich_writer()));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.at("general.architecture").as_string(), "llama");
  EXPECT_EQ(f.at("u8").as_int64(), 200);
  EXPECT_EQ(f.at("i8").as_int64(), -100);
  EXPECT_EQ(f.at("u16").as_int64(), 60000);
  EXPECT_EQ(f.at("i16").as_int64(), -30000);
  EXPECT_EQ(f.at("u32").as_int64(), 4000000000ll);
  EXPECT_EQ(f.at("u32").as_uint64(), 4000000000ull);
  EXPECT_EQ(f.at("i32").as_int64(), -2000000000);
  EXPECT_EQ(f.at("u64").as_uint64(), 18000000000000000000ull);
  EXPECT_EQ(f.at("i64").as_int64(), -9000000000000000000ll);
  EXPECT_EQ(f.at("f32").as_double(), 1.5);
  EXPECT_EQ(f.at("f64").as_double(), -2.25);
  EXPECT_EQ(f.at("i32").as_double(), -2000000000.0);
  EXPECT_EQ(f.at("u64").as_double(), 18000000000000000000.0);
  EXPECT_TRUE(f.at("bool_true").as_bool());
  EXPECT_FALSE(f.at("bool_false").as_bool());
  EXPECT_EQ(f.at("u8").type(), ValueType::UINT8);
  EXPECT_EQ(f.at("f64").type(), ValueType::FLOAT64);
  EXPECT_EQ(f.at("bool_true").type(), ValueType::BOOL);
  EXPECT_EQ(f.at("general.architecture").type(), ValueType::STRING);
  EXPECT_FALSE(f.at("u8").is_array());
  EXPECT_EQ(f.metadata().size(), 25u);
  ASSERT_EQ(f.keys().size(), 25u);
  EXPECT_EQ(f.keys().front(), "general.architecture");
  EXPECT_EQ(f.keys().back(), "u8s");
  EXPECT_EQ(f.find("missing"), nullptr);
  ASSERT_NE(f.find("u8"), nullptr);
}

TEST_F(GgufTest, ArraysRoundTrip) {
  const File f = File::open(write(rich_writer()));
  const Value& tokens = f.at("tokenizer.ggml.tokens");
  EXPECT_TRUE(tokens.is_array());
  EXPECT_EQ(tokens.type(), ValueType::ARRAY);
  EXPECT_EQ(tokens.element_type(), ValueType::STRING);
  EXPECT_EQ(tokens.array_size(), 4u);
  EXPECT_EQ(tokens.as_string_array(),
            (std::vector<std::string>{"<s>", "", "a b", std::string("x\0y", 3)}));
  EXPECT_EQ(tokens.type_description(), "array of string (4 elements)");

  EXPECT_EQ(f.at("tokenizer.ggml.scores").as_float_array(),
            (std::vector<float>{0.f, -1.5f, 2.f, 3.25f}));
  EXPECT_EQ(f.at("tokenizer.ggml.token_type").as_int_array(), (std::vector<int64_t>{1, 3, -1, 2}));
  EXPECT_EQ(f.at("f64s").as_float_array(), (std::vector<float>{1.f, -0.5f}));
  EXPECT_EQ(f.at("bools").as_bool_array(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.at("u64s").as_int_array(), (std::vector<int64_t>{0, 1, 1ll << 40}));
  EXPECT_EQ(f.at("i8s").as_int_array(), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(f.at("u16s").as_int_array(), (std::vector<int64_t>{65535}));
  EXPECT_EQ(f.at("i16s").as_int_array(), (std::vector<int64_t>{-32768}));
  EXPECT_EQ(f.at("u32s").as_int_array(), (std::vector<int64_t>{4294967295ll}));
  EXPECT_EQ(f.at("i64s").as_int_array(),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min()}));
  EXPECT_EQ(f.at("u8s").array_size(), 0u);
  EXPECT_EQ(f.at("u8s").element_type(), ValueType::UINT8);
  EXPECT_TRUE(f.at("u8s").as_int_array().empty());
}

TEST_F(GgufTest, AccessorsCheckTypes) {
  const std::string p = write(rich_writer());
  const File f = File::open(p);
  expect_error([&] { f.at("u32").as_string(); },
               {"key 'u32'", p, "expected a string", "found uint32"});
  expect_error([&] { f.at("general.architecture").as_int64(); },
               {"key 'general.architecture'", "expected an integer", "found string"});
  expect_error([&] { f.at("bool_true").as_int64(); }, {"expected an integer", "found bool"});
  expect_error([&] { f.at("u8").as_bool(); }, {"expected a bool", "found uint8"});
  expect_error([&] { f.at("general.architecture").as_double(); },
               {"expected a number", "found string"});
  expect_error([&] { f.at("tokenizer.ggml.scores").as_string_array(); },
               {"key 'tokenizer.ggml.scores'", "expected an array of string",
                "found array of float32 (4 elements)"});
  expect_error([&] { f.at("tokenizer.ggml.tokens").as_float_array(); },
               {"expected an array of float32 or float64", "found array of string"});
  expect_error([&] { f.at("tokenizer.ggml.scores").as_int_array(); },
               {"expected an array of integers", "found array of float32"});
  expect_error([&] { f.at("u8s").as_bool_array(); }, {"expected an array of bool"});
  expect_error([&] { f.at("u8").array_size(); }, {"expected an array", "found uint8"});
  expect_error([&] { f.at("u8").element_type(); }, {"expected an array", "found uint8"});
  expect_error([&] { f.at("u64").as_int64(); }, {"key 'u64'", "does not fit in int64"});
  expect_error([&] { f.at("i8").as_uint64(); }, {"key 'i8'", "non-negative", "-100"});
  expect_error([&] { f.at("no.such.key"); }, {"no metadata key 'no.such.key'", p});
  expect_error([&] { f.tensor("no.such.tensor"); }, {"no tensor 'no.such.tensor'", p});
}

TEST_F(GgufTest, LargeUint64ArrayElementsDoNotFitInt64) {
  GgufWriter w;
  w.add_array<uint64_t>("big", ValueType::UINT64, {1, 1ull << 63});
  const File f = File::open(write(w));
  expect_error([&] { f.at("big").as_int_array(); }, {"key 'big'", "element 1", "int64"});
}

// ---- Tensors ---------------------------------------------------------------------------------

TEST_F(GgufTest, TensorInfosAndDataDefaultAlignment) {
  const GgufWriter w = rich_writer();
  const std::vector<uint8_t> bytes = w.build();
  const File f = File::open(write(bytes));
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), w.data_offset());
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(f.size(), bytes.size());
  ASSERT_EQ(f.tensors().size(), 5u);

  const TensorInfo& e = f.tensor("token_embd.weight");
  EXPECT_EQ(e.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(e.type, TensorType::F32);
  EXPECT_EQ(e.offset, 0u);
  EXPECT_EQ(e.nbytes, 24u);
  EXPECT_EQ(e.n_elements(), 6);
  float values[6];
  std::memcpy(values, f.tensor_data(e), sizeof(values));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(values[i], i + 1.0f);

  const TensorInfo& q = f.tensor("blk.0.attn_q.weight");
  EXPECT_EQ(q.type, TensorType::Q8_0);
  EXPECT_EQ(q.offset, 32u);  // 24 bytes padded to 32
  EXPECT_EQ(q.nbytes, 2u * 3u * 34u);
  EXPECT_EQ(std::vector<uint8_t>(f.tensor_data(q), f.tensor_data(q) + q.nbytes),
            iota_bytes(2 * 3 * 34));

  const TensorInfo& k = f.tensor("blk.0.ffn.weight");
  EXPECT_EQ(k.type, TensorType::Q6_K);
  EXPECT_EQ(k.nbytes, 420u);
  EXPECT_EQ(k.offset % 32, 0u);
  EXPECT_EQ(std::vector<uint8_t>(f.tensor_data(k), f.tensor_data(k) + k.nbytes),
            iota_bytes(420, 5));

  const TensorInfo& s = f.tensor("scalar");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.n_elements(), 1);
  EXPECT_EQ(s.nbytes, 2u);
  EXPECT_EQ(f.tensor_data(s)[1], 0x3c);

  const TensorInfo& z = f.tensor("empty");
  EXPECT_EQ(z.n_elements(), 0);
  EXPECT_EQ(z.nbytes, 0u);

  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  EXPECT_EQ(f.find_tensor("scalar"), &s);
  EXPECT_EQ(f.tensors()[0].name, "token_embd.weight");  // file order
  EXPECT_EQ(f.tensors()[4].name, "empty");
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.tensor_data(t)) % 32, 0u) << t.name;
  }
}

TEST_F(GgufTest, CustomAlignment) {
  for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(alignment);
    GgufWriter w;
    w.set_alignment(alignment)
        .add_f32_tensor("a", {3}, {1, 2, 3})
        .add_f32_tensor("b", {5}, {4, 5, 6, 7, 8});
    const File f = File::open(write(w));
    EXPECT_EQ(f.alignment(), alignment);
    EXPECT_EQ(f.data_offset() % alignment, 0u);
    EXPECT_EQ(f.data_offset(), w.data_offset());
    const TensorInfo& b = f.tensor("b");
    EXPECT_EQ(b.offset, ((12 + alignment - 1) / alignment) * alignment);
    float v[5];
    std::memcpy(v, f.tensor_data(b), sizeof(v));
    EXPECT_EQ(v[0], 4.f);
    EXPECT_EQ(v[4], 8.f);
    EXPECT_EQ(f.at("general.alignment").as_int64(), alignment);
  }
}

TEST_F(GgufTest, Version2AndNoTensorsAndUnpaddedEnd) {
  GgufWriter w(2);
  w.add_string("general.name", "v2");
  File f = File::open(write(w));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.at("general.name").as_string(), "v2");

  GgufWriter u;
  u.pad_end = false;
  u.add_f32_tensor("a", {3}, {1, 2, 3});
  const std::vector<uint8_t> bytes = u.build();
  f = File::open(write(bytes, "unpadded.gguf"));  // move assignment
  EXPECT_EQ(f.size(), bytes.size());
  EXPECT_EQ(f.data_offset() + 12, bytes.size());
}

TEST_F(GgufTest, MoveKeepsDataValid) {
  File a = File::open(write(rich_writer()));
  const uint8_t* data = a.tensor_data(a.tensor("token_embd.weight"));
  File b(std::move(a));
  EXPECT_EQ(b.tensor_data(b.tensor("token_embd.weight")), data);
  EXPECT_EQ(b.at("general.architecture").as_string(), "llama");
  File c = File::open(write(GgufWriter().add_u8("x", 1), "other.gguf"));
  c = std::move(b);
  EXPECT_EQ(c.tensor_data(c.tensor("token_embd.weight")), data);
}

// ---- Malformed files -------------------------------------------------------------------------

TEST_F(GgufTest, MissingEmptyAndNonRegularFiles) {
  expect_error([&] { File::open(path("none.gguf")); }, {"cannot open", path("none.gguf")});
  expect_error([&] { File::open(write(std::vector<uint8_t>{}, "empty.gguf")); },
               {"empty", "byte 0"});
  expect_error([&] { File::open(dir_.string()); }, {"not a regular file"});
}

TEST_F(GgufTest, BadHeader) {
  expect_open_error(std::vector<uint8_t>{'G', 'G', 'U'}, {"byte 0", "truncated", "magic"});
  GgufBytes ggml;
  ggml.raw({'g', 'g', 'm', 'l', 0x01}).u32(3).u64(0).u64(0);
  expect_open_error(ggml.data, {"byte 0", "not a GGUF file", "magic is 'ggml'", "'GGUF'"});
  expect_open_error(header(0, 0, 1).data, {"byte 4", "version 1 is not supported", "2 or 3"});
  expect_open_error(header(0, 0, 4).data, {"byte 4", "unsupported GGUF version 4", "2 or 3"});
  expect_open_error(header(0, 0, 0x03000000u).data, {"byte 4", "big-endian"});
  std::vector<uint8_t> short_header = header(0, 0).data;
  short_header.resize(20);
  expect_open_error(short_header, {"byte 16", "truncated", "kv_count", "8 bytes", "only 4"});
}

TEST_F(GgufTest, AbsurdCounts) {
  expect_open_error(header(0, 1ull << 60).data, {"byte 16", "kv_count 1152921504606846976",
                                                 "impossible", "0 metadata entries"});
  GgufWriter w;
  w.add_u8("a", 1);
  w.kv_count_override = 100;
  expect_open_error(w, {"kv_count 100", "impossible"});
  expect_open_error(header(1ull << 62, 0).data, {"byte 8", "tensor_count", "impossible"});
  GgufWriter t;
  t.add_f32_tensor("a", {1}, {1});
  t.tensor_count_override = 2;  // the second info reads past the end or into padding
  expect_open_error(t, {"tensor info"});
}

TEST_F(GgufTest, StringLengthsPastEof) {
  GgufBytes b = header(0, 1);
  b.u64(1000).raw(std::vector<uint8_t>(20, 'a'));
  expect_open_error(b.data, {"byte 24", "key has length 1000", "only 20 bytes remain"});

  GgufBytes v = header(0, 1);
  v.str("k").u32(8).u64(~0ull);
  expect_open_error(
      v.data, {"byte 37", "string value has length 18446744073709551615", "metadata key 'k'"});

  GgufBytes a = header(0, 1);
  a.str("k").u32(9).u32(8).u64(2).str("ok").u64(99).raw({'x'});
  expect_open_error(a.data, {"array string has length 99", "metadata key 'k'"});
}

TEST_F(GgufTest, InvalidValueTypes) {
  GgufBytes b = header(0, 1);
  b.str("k").u32(13).u64(0);
  expect_open_error(b.data,
                    {"byte 33", "invalid value type 13", "expected 0..12", "metadata key 'k'"});
  GgufBytes e = header(0, 1);
  e.str("k").u32(9).u32(0xFFFFFFFFu).u64(0);
  expect_open_error(e.data, {"byte 37", "invalid array element type 4294967295"});
}

TEST_F(GgufTest, NestedArraysRefused) {
  GgufBytes b = header(0, 1);
  b.str("nested").u32(9).u32(9).u64(1).u32(4).u64(1).u32(7);
  expect_open_error(b.data, {"nested arrays are not supported", "metadata key 'nested'"});
}

TEST_F(GgufTest, AbsurdArrayLengths) {
  GgufBytes n = header(0, 1);
  n.str("k").u32(9).u32(6).u64(1ull << 62).u32(0);
  expect_open_error(
      n.data, {"byte 41", "array length 4611686018427387904 of float32", "only 4 bytes remain"});
  GgufBytes s = header(0, 1);
  s.str("k").u32(9).u32(8).u64(1000).str("a");
  expect_open_error(s.data, {"array length 1000 is impossible", "at least 8"});
}

TEST_F(GgufTest, InvalidBools) {
  GgufBytes b = header(0, 1);
  b.str("k").u32(7).raw({2});
  expect_open_error(b.data, {"byte 37", "invalid bool byte 2", "0 or 1"});
  GgufWriter a;
  a.add_array<uint8_t>("flags", ValueType::BOOL, {0, 1, 255});
  expect_open_error(a, {"invalid bool byte 255", "metadata key 'flags'"});
}

TEST_F(GgufTest, DuplicateAndEmptyKeys) {
  GgufWriter w;
  w.add_u8("a", 1).add_string("a", "again");
  expect_open_error(w, {"byte 38", "duplicate metadata key 'a'"});
  GgufWriter e;
  e.add_u8("", 1);
  expect_open_error(e, {"byte 24", "empty metadata key"});
}

TEST_F(GgufTest, BadAlignment) {
  GgufWriter t;
  t.add_u64("general.alignment", 64);
  expect_open_error(t, {"general.alignment has type uint64", "expected uint32"});
  for (uint32_t bad : {0u, 48u, 0x80000001u}) {
    GgufWriter w;  // not set_alignment(): the writer would lay the file out with it
    w.add_u32("general.alignment", bad);
    expect_open_error(w, {"general.alignment is " + std::to_string(bad), "power of two"});
  }
}

TEST_F(GgufTest, DuplicateAndLongTensorNames) {
  GgufWriter w;
  w.add_f32_tensor("w", {1}, {1}).add_f32_tensor("w", {1}, {2});
  expect_open_error(w, {"byte 57", "duplicate tensor name 'w'"});
  GgufWriter l;
  l.add_f32_tensor(std::string(64, 'n'), {1}, {1});
  expect_open_error(l, {"byte 24", "is 64 bytes long", "fewer than 64"});
  GgufWriter ok;
  ok.add_f32_tensor(std::string(63, 'n'), {1}, {1});
  EXPECT_NO_THROW(File::open(write(ok, "ok.gguf")));
}

TEST_F(GgufTest, BadShapes) {
  GgufWriter d;
  d.add_tensor("t", {1, 1, 1, 1, 1}, TensorType::F32, {0, 0, 0, 0});
  expect_open_error(d, {"byte 33", "5 dimensions", "at most 4", "tensor info of 't'"});
  GgufWriter n;
  n.add_tensor("t", {2, ~0ull}, TensorType::F32, {});
  expect_open_error(n, {"byte 45", "dimension 1 is -1", "non-negative"});
  GgufWriter o;
  o.add_tensor("t", {1ull << 32, 1ull << 32}, TensorType::F32, {});
  expect_open_error(o, {"byte 45", "more than 2^63 elements"});
  GgufWriter b;
  b.add_tensor("t", {1ull << 61}, TensorType::F64, {});
  expect_open_error(b, {"more than 2^64 bytes", "F64"});
  GgufWriter q;
  q.add_tensor("t", {31, 2}, TensorType::Q4_0, std::vector<uint8_t>(36));
  expect_open_error(q, {"ne[0] = 31", "not a multiple of the block size 32 of Q4_0"});
}

TEST_F(GgufTest, UnknownTensorTypes) {
  for (uint32_t type : {4u, 31u, 99u}) {
    GgufWriter w;
    w.add_tensor("t", {32}, type, std::vector<uint8_t>(32));
    expect_open_error(w, {"byte 45", "unknown ggml type " + std::to_string(type)});
  }
}

TEST_F(GgufTest, TensorDataOutOfFile) {
  GgufWriter w;
  w.add_f32_tensor("a", {4}, {1, 2, 3, 4});
  std::vector<uint8_t> bytes = w.build();
  bytes.resize(w.data_offset() + 15);  // one byte short
  expect_open_error(
      bytes, {"tensor data [0, 0 + 16)", "extends past the end of the file", "tensor info of 'a'"});
  GgufBytes far = header(1, 0);  // by hand: build() would place the data at that offset
  far.str("b").u32(1).u64(4).u32(0).u64(1ull << 62);
  far.data.resize(128, 0);
  expect_open_error(far.data, {"byte 24", "tensor data [4611686018427387904, ",
                               "extends past the end of the file (128 bytes)"});
}

TEST_F(GgufTest, OffsetOverflowIsCaught) {
  GgufBytes b = header(1, 0);
  b.str("a").u32(1).u64(4).u32(0).u64(~0ull - 31);  // offset + nbytes overflows uint64
  b.data.resize(128, 0);
  expect_open_error(b.data, {"extends past the end of the file"});
}

TEST_F(GgufTest, DataSectionPastEof) {
  GgufBytes b = header(1, 0);
  b.str("z").u32(1).u64(0).u32(0).u64(0);  // zero-size tensor, infos end at byte 57
  expect_open_error(b.data, {"byte 57", "data section would start at byte 64"});
  b.data.resize(64, 0);
  EXPECT_NO_THROW(File::open(write(b.data, "ok.gguf")));
}

TEST_F(GgufTest, MisalignedAndOverlappingTensors) {
  GgufWriter m;
  m.add_f32_tensor("a", {4}, {1, 2, 3, 4});
  m.add_tensor("b", {4}, TensorType::F32, std::vector<uint8_t>(16), 36);
  expect_open_error(
      m, {"tensor data offset 36 is not a multiple of the alignment 32", "tensor info of 'b'"});
  GgufWriter o;
  o.add_f32_tensor("a", {16}, std::vector<float>(16, 1.f));
  o.add_tensor("b", {4}, TensorType::F32, std::vector<uint8_t>(16), 32);
  expect_open_error(o, {"tensor 'b' data [32, 48) overlaps tensor 'a' data [0, 64)"});
  GgufWriter s;  // same offset, out of file order
  s.add_tensor("late", {8}, TensorType::F32, std::vector<uint8_t>(32), 64);
  s.add_tensor("early", {8}, TensorType::F32, std::vector<uint8_t>(32), 0);
  s.add_tensor("also_early", {8}, TensorType::F32, std::vector<uint8_t>(32), 0);
  expect_open_error(s, {"overlaps"});
  GgufWriter r;  // out-of-order but disjoint tensors, and a zero-size tensor inside another
  r.add_tensor("late", {8}, TensorType::F32, std::vector<uint8_t>(32), 64);
  r.add_tensor("early", {16}, TensorType::F32, std::vector<uint8_t>(64), 0);
  r.add_tensor("nothing", {0}, TensorType::F32, {}, 32);
  const File f = File::open(write(r, "ok.gguf"));
  EXPECT_EQ(f.tensor("late").offset, 64u);
}

// ---- Sweeps ----------------------------------------------------------------------------------

// Opens `bytes` and, when that succeeds, touches everything the File exposes (for ASan). Returns
// false when opening threw npeff::Error; any other exception fails the test.
bool open_and_touch(const std::string& p) {
  try {
    const File f = File::open(p);
    std::size_t sink = 0;
    for (const auto& [key, value] : f.metadata()) {
      sink += key.size() + value.type_description().size();
      if (value.type() == ValueType::STRING) sink += value.as_string().size();
      if (value.is_array() && value.element_type() == ValueType::STRING) {
        for (const std::string& s : value.as_string_array()) sink += s.size();
      }
    }
    for (const TensorInfo& t : f.tensors()) {
      const uint8_t* d = f.tensor_data(t);
      if (t.nbytes > 0) sink += d[0] + d[t.nbytes - 1];
      sink += static_cast<std::size_t>(t.n_elements());
    }
    EXPECT_GE(sink, 0u);
    return true;
  } catch (const npeff::Error&) {
    return false;
  }
}

TEST_F(GgufTest, EveryTruncationThrows) {
  GgufWriter w = rich_writer();
  w.pad_end = false;
  const std::vector<uint8_t> bytes = w.build();
  const File full = File::open(write(bytes, "full.gguf"));
  uint64_t needed = 0;
  for (const TensorInfo& t : full.tensors()) {
    needed = std::max(needed, full.data_offset() + t.offset + t.nbytes);
  }
  ASSERT_EQ(needed, bytes.size());
  const std::string p = path("prefix.gguf");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    GgufWriter::write_bytes(p, std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
    EXPECT_FALSE(open_and_touch(p))
        << "a prefix of " << n << " of " << bytes.size() << " bytes opened";
  }
}

TEST_F(GgufTest, EveryHeaderByteMutation) {
  // Each byte before the data section, set to a few interesting values.
  const GgufWriter w = rich_writer();
  const std::vector<uint8_t> bytes = w.build();
  const std::string p = path("mutated.gguf");
  int opened = 0, refused = 0;
  for (std::size_t i = 0; i < w.data_offset(); ++i) {
    for (uint8_t v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      if (bytes[i] == v) continue;
      std::vector<uint8_t> m = bytes;
      m[i] = v;
      GgufWriter::write_bytes(p, m);
      (open_and_touch(p) ? opened : refused)++;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(opened, 0);  // e.g. changed characters in strings or values
}

TEST_F(GgufTest, RandomByteFlips) {
  uint32_t seed = std::random_device{}();
  if (const char* s = std::getenv("NPEFF_GGUF_FUZZ_SEED")) seed = std::strtoul(s, nullptr, 10);
  std::cout << "[ GGUF fuzz ] seed " << seed << " (rerun with NPEFF_GGUF_FUZZ_SEED=" << seed << ")"
            << std::endl;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const GgufWriter w = rich_writer();
  const std::vector<uint8_t> bytes = w.build();
  const std::string p = path("flipped.gguf");
  std::uniform_int_distribution<std::size_t> header_pos(0, w.data_offset() - 1);
  std::uniform_int_distribution<std::size_t> any_pos(0, bytes.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255), flips(1, 4), coin(0, 3);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> m = bytes;
    const int n = flips(rng);
    for (int j = 0; j < n; ++j) {
      // Mostly the header, metadata and tensor infos: that is where the checks are.
      const std::size_t at = coin(rng) ? header_pos(rng) : any_pos(rng);
      m[at] = coin(rng) ? static_cast<uint8_t>(byte(rng)) : static_cast<uint8_t>(m[at] ^ 0x80);
    }
    if (coin(rng) == 0) m.resize(any_pos(rng));
    GgufWriter::write_bytes(p, m);
    open_and_touch(p);
  }
}

}  // namespace
