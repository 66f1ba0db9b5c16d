// GGUF dequantisation (include/npeff/io/gguf_dequant.h): bit-exact agreement with gguf-py's numpy
// dequantiser on tests/fixtures/gguf/dequant.gguf (every supported type, quantised floats and
// random blocks), hand-computed blocks, element-wise reference formulas for the K quants, and the
// error cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "npeff/io/gguf_dequant.h"
#include "npeff/io/safetensors.h"
#include "unit/gguf_writer.h"
#include "unit/safetensors_writer.h"
#include "unit/test_util.h"

namespace {

using npeff::testing::source_dir;

using npeff::gguf::can_dequantize;
using npeff::gguf::dequantize;
using npeff::gguf::dequantize_tensor;
using npeff::gguf::File;
using npeff::gguf::TensorInfo;
using npeff::gguf::TensorType;
using npeff::testing::expect_error;
using npeff::testing::float_to_half_bits;
using npeff::testing::GgufWriter;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

void put_half(std::vector<uint8_t>& block, std::size_t at, float v) {
  const uint16_t h = float_to_half_bits(v);
  block[at] = static_cast<uint8_t>(h & 0xff);
  block[at + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> run(TensorType type, const std::vector<uint8_t>& data, int64_t n) {
  std::vector<float> out(static_cast<std::size_t>(n));
  dequantize(type, data.data(), n, out.data());
  return out;
}

const std::vector<TensorType> kSupported = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
    TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

TEST(GgufDequant, SupportedTypes) {
  std::set<TensorType> supported(kSupported.begin(), kSupported.end());
  for (uint32_t n = 0; n < 64; ++n) {
    const auto t = static_cast<TensorType>(n);
    EXPECT_EQ(can_dequantize(t), supported.count(t) == 1) << n;
  }
}

TEST(GgufDequant, Errors) {
  std::vector<float> out(256);
  const std::vector<uint8_t> data(1024, 0);
  expect_error([&] { dequantize(TensorType::IQ2_XXS, data.data(), 256, out.data()); },
               {"tensor type IQ2_XXS is not supported", "Q6_K"});
  expect_error([&] { dequantize(TensorType::Q8_K, data.data(), 256, out.data()); },
               {"tensor type Q8_K is not supported"});
  expect_error([&] { dequantize(static_cast<TensorType>(99), data.data(), 32, out.data()); },
               {"tensor type number 99 is not supported"});
  expect_error([&] { dequantize(TensorType::Q4_0, data.data(), 33, out.data()); },
               {"33 elements of Q4_0", "multiple of its block size 32"});
  expect_error([&] { dequantize(TensorType::Q6_K, data.data(), 128, out.data()); },
               {"128 elements of Q6_K", "block size 256"});
  expect_error([&] { dequantize(TensorType::F32, data.data(), -1, out.data()); },
               {"-1 elements of F32"});
  dequantize(TensorType::Q4_0, nullptr, 0, nullptr);  // nothing to do
}

// ---- Hand-computed blocks ----------------------------------------------------------------------

TEST(GgufDequant, Q4_0AndQ4_1) {
  std::vector<uint8_t> b(18, 0);
  put_half(b, 0, 0.5f);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = run(TensorType::Q4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 8)) << j;
    EXPECT_EQ(y[16 + j], 0.5f * static_cast<float>(7 - j)) << j;
  }
  std::vector<uint8_t> b1(20, 0);
  put_half(b1, 0, 0.25f);
  put_half(b1, 2, -3.f);
  for (int j = 0; j < 16; ++j) b1[4 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y1 = run(TensorType::Q4_1, b1, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y1[j], 0.25f * static_cast<float>(j) - 3.f) << j;
    EXPECT_EQ(y1[16 + j], 0.25f * static_cast<float>(15 - j) - 3.f) << j;
  }
}

TEST(GgufDequant, Q5_0AndQ5_1UseTheHighBits) {
  std::vector<uint8_t> b(22, 0);
  put_half(b, 0, 2.f);
  const uint32_t qh = 0x80000001u;  // fifth bit of elements 0 and 31
  std::memcpy(&b[2], &qh, 4);
  for (int j = 0; j < 16; ++j) b[6 + j] = 0xF3;  // low nibble 3 (elements 0..15), high 15
  const std::vector<float> y = run(TensorType::Q5_0, b, 32);
  EXPECT_EQ(y[0], 2.f * (16 + 3 - 16));
  EXPECT_EQ(y[1], 2.f * (3 - 16));
  EXPECT_EQ(y[16], 2.f * (15 - 16));
  EXPECT_EQ(y[31], 2.f * (16 + 15 - 16));
  std::vector<uint8_t> b1(24, 0);
  put_half(b1, 0, 1.f);
  put_half(b1, 2, 0.5f);
  std::memcpy(&b1[4], &qh, 4);
  for (int j = 0; j < 16; ++j) b1[8 + j] = 0xF3;
  const std::vector<float> y1 = run(TensorType::Q5_1, b1, 32);
  EXPECT_EQ(y1[0], 19.5f);
  EXPECT_EQ(y1[1], 3.5f);
  EXPECT_EQ(y1[16], 15.5f);
  EXPECT_EQ(y1[31], 31.5f);
}

TEST(GgufDequant, Q8_0AndFloats) {
  std::vector<uint8_t> b(34, 0);
  put_half(b, 0, -0.125f);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
  const std::vector<float> y = run(TensorType::Q8_0, b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], -0.125f * static_cast<float>(j * 8 - 128)) << j;

  const std::vector<uint8_t> h = {0x01, 0x00, 0x00, 0x7c, 0xff, 0x7b, 0x00, 0x80};
  const std::vector<float> yh = run(TensorType::F16, h, 4);
  EXPECT_EQ(yh[0], std::ldexp(1.f, -24));
  EXPECT_EQ(yh[1], INFINITY);
  EXPECT_EQ(yh[2], 65504.f);
  EXPECT_TRUE(yh[3] == 0.f && std::signbit(yh[3]));
  const std::vector<float> yb = run(TensorType::BF16, {0x80, 0x3f, 0x20, 0xc0}, 2);
  EXPECT_EQ(yb[0], 1.f);
  EXPECT_EQ(yb[1], -2.5f);
  const std::vector<float> yf = run(TensorType::F32, {0, 0, 0x80, 0x3f}, 1);
  EXPECT_EQ(yf[0], 1.f);
}

// ---- K quants: element-wise reference formulas (random blocks) ---------------------------------

std::vector<uint8_t> random_blocks(std::mt19937& rng, int n, int bytes,
                                   const std::vector<int>& half_fields) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-2.f, 2.f);
  std::vector<uint8_t> out(static_cast<std::size_t>(n * bytes));
  for (uint8_t& v : out) v = static_cast<uint8_t>(byte(rng));
  for (int b = 0; b < n; ++b) {
    for (int f : half_fields) put_half(out, static_cast<std::size_t>(b * bytes + f), scale(rng));
  }
  return out;
}

float half_at(const uint8_t* p) {
  std::vector<float> v(1);
  dequantize(TensorType::F16, p, 1, v.data());
  return v[0];
}

TEST(GgufDequant, KQuantsMatchElementwiseFormulas) {
  std::mt19937 rng(7);
  const int nb = 3;
  // Q6_K: element i of a block: half h = i / 128, r = i % 128, l = r % 32, group g = r / 32;
  // low nibble from ql[64h + l + 32 (g & 1)] (high nibble when g >= 2), two high bits from bits
  // 2g of qh[32h + l], scale scales[8h + 2g + l / 16].
  const auto q6 = random_blocks(rng, nb, 210, {208});
  const auto y6 = run(TensorType::Q6_K, q6, nb * 256);
  for (int b = 0; b < nb; ++b) {
    const uint8_t* blk = q6.data() + b * 210;
    for (int i = 0; i < 256; ++i) {
      const int h = i / 128, r = i % 128, l = r % 32, g = r / 32;
      const uint8_t lq = blk[64 * h + l + 32 * (g & 1)];
      const int low = g >= 2 ? lq >> 4 : lq & 15;
      const int high = (blk[128 + 32 * h + l] >> (2 * g)) & 3;
      const auto sc = static_cast<int8_t>(blk[192 + 8 * h + 2 * g + l / 16]);
      const float expected =
          half_at(blk + 208) * static_cast<float>(sc) * static_cast<float>((low | high << 4) - 32);
      ASSERT_EQ(bits_of(y6[b * 256 + i]), bits_of(expected)) << "Q6_K block " << b << " i " << i;
    }
  }
  // Q3_K: element i: h = i / 128, r = i % 128, shift s = r / 32, l = r % 32; two low bits at
  // 2s of qs[32h + l]; minus 4 unless bit 4h + s of hmask[l]; 6-bit scale number 8h + 2s + l/16.
  const auto q3 = random_blocks(rng, nb, 110, {108});
  const auto y3 = run(TensorType::Q3_K, q3, nb * 256);
  for (int b = 0; b < nb; ++b) {
    const uint8_t* blk = q3.data() + b * 110;
    const uint8_t* sc = blk + 96;
    for (int i = 0; i < 256; ++i) {
      const int h = i / 128, r = i % 128, s = r / 32, l = r % 32, j = 8 * h + 2 * s + l / 16;
      const int low4 = j < 8 ? sc[j] & 15 : sc[j - 8] >> 4;
      const int high2 = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
      const int q = ((blk[32 + 32 * h + l] >> (2 * s)) & 3) - ((blk[l] >> (4 * h + s)) & 1 ? 0 : 4);
      const float dl = half_at(blk + 108) * static_cast<float>((low4 | high2 << 4) - 32);
      ASSERT_EQ(bits_of(y3[b * 256 + i]), bits_of(dl * static_cast<float>(q)))
          << "Q3_K block " << b << " i " << i;
    }
  }
}

// ---- gguf-py reference fixture -----------------------------------------------------------------

TEST(GgufDequant, BitIdenticalToGgufPy) {
  const std::string dir = source_dir() + "/tests/fixtures/gguf/";
  const File f = File::open(dir + "dequant.gguf");
  const auto expected = npeff::safetensors::File::open(dir + "dequant_expected.safetensors");
  ASSERT_EQ(f.tensors().size(), expected.tensors().size());
  std::set<TensorType> covered;
  for (const TensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    const npeff::safetensors::TensorView& e = expected.at(t.name);
    ASSERT_EQ(e.dtype, npeff::safetensors::Dtype::F32);
    // safetensors shapes are numpy order: the reverse of GGUF's.
    ASSERT_EQ(std::vector<int64_t>(e.shape.rbegin(), e.shape.rend()), t.shape);
    const std::vector<float> y = dequantize_tensor(f, t);
    ASSERT_EQ(static_cast<int64_t>(y.size()), e.numel());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      uint32_t want;
      std::memcpy(&want, e.data + 4 * i, 4);
      if (bits_of(y[i]) != want && mismatches++ < 5) {
        ADD_FAILURE() << "element " << i << ": 0x" << std::hex << bits_of(y[i]) << ", gguf-py 0x"
                      << want;
      }
    }
    EXPECT_EQ(mismatches, 0u);
    covered.insert(t.type);
  }
  for (TensorType type : kSupported) {
    EXPECT_TRUE(covered.count(type)) << npeff::gguf::tensor_type_name(type) << " not covered";
  }
}

// ---- dequantize_tensor -------------------------------------------------------------------------

class GgufDequantTensor : public npeff::testing::TempDirTest {};

TEST_F(GgufDequantTensor, WholeTensorsAndErrors) {
  std::vector<uint8_t> q8(2 * 34, 0);
  put_half(q8, 0, 1.f);
  put_half(q8, 34, 2.f);
  q8[2] = 5;
  q8[34 + 33] = 0xff;  // -1
  GgufWriter w;
  w.add_tensor("q8", {32, 2}, TensorType::Q8_0, q8)
      .add_tensor("iq", {32}, TensorType::IQ4_NL, std::vector<uint8_t>(18, 0))
      .add_tensor("empty", {0, 3}, TensorType::Q4_K, {});
  const std::string p = path("t.gguf");
  w.write(p);
  const File f = File::open(p);
  const std::vector<float> y = dequantize_tensor(f, f.tensor("q8"));
  ASSERT_EQ(y.size(), 64u);
  EXPECT_EQ(y[0], 5.f);
  EXPECT_EQ(y[63], -2.f);
  EXPECT_TRUE(dequantize_tensor(f, f.tensor("empty")).empty());
  expect_error([&] { dequantize_tensor(f, f.tensor("iq")); },
               {"GGUF file '" + p + "'", "tensor 'iq'", "tensor type IQ4_NL is not supported"});
  TensorInfo wrong = f.tensor("q8");
  wrong.nbytes = 34;
  expect_error([&] { dequantize_tensor(f, wrong); },
               {"tensor 'q8'", "34 bytes for shape [32, 2] of Q8_0, expected 68"});
}

TEST(GgufDequant, RandomBlocksOfEveryTypeAreSafe) {
  // Any bytes are valid input (NaN/Inf scales give NaN/Inf values); for ASan and UBSan.
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (TensorType type : kSupported) {
    const int64_t block = npeff::gguf::tensor_type_block_size(type);
    const int64_t bytes = npeff::gguf::tensor_type_block_bytes(type);
    for (int64_t nb : {1, 2, 5}) {
      const int64_t n = (block == 1 ? 32 : block) * nb;
      std::vector<uint8_t> data(static_cast<std::size_t>(n / block * bytes));
      for (uint8_t& v : data) v = static_cast<uint8_t>(byte(rng));
      EXPECT_EQ(run(type, data, n).size(), static_cast<std::size_t>(n));
    }
  }
}

}  // namespace
