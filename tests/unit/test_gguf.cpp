// GGUF reader (include/npeff/io/gguf.h) on valid files: the type tables, round trips of every
// value and array type, tensor layout and alignment, moves. Malformed files and the truncation
// and byte-mutation sweeps are in test_gguf_malformed.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "unit/gguf_test_fixture.h"
#include "unit/gguf_writer.h"
#include "unit/test_util.h"

namespace {

using npeff::gguf::File;
using npeff::gguf::TensorInfo;
using npeff::gguf::TensorType;
using npeff::gguf::Value;
using npeff::gguf::ValueType;
using npeff::testing::expect_error;
using npeff::testing::GgufTest;
using npeff::testing::GgufWriter;
using npeff::testing::iota_bytes;
using npeff::testing::rich_writer;

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

}  // namespace
