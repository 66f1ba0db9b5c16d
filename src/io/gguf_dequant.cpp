// GGUF dequantisation: see include/npeff/io/gguf_dequant.h and docs/gguf.md.
//
// Written from the block layouts of ggml/src/ggml-common.h (block_q4_0 ... block_q6_K) and the
// formulas of ggml/src/ggml-quants.c (dequantize_row_*), computing the same float32 operations in
// the same order. Every product here is exact in float32 (an f16 scale has 11 significant bits, a
// sub-block scale at most 8 and a quant at most 6, 24 bits in all for Q6_K), so the only rounding
// is the final "- m" / "+ m" of the types with a minimum: results are bit-identical to ggml's and
// gguf-py's whatever the evaluation order or fused multiply-adds
// (tests/unit/test_gguf_dequant.cpp).
#include "npeff/io/gguf_dequant.h"

#include <cstring>
#include <limits>  // before gguf_internal.h, which uses std::numeric_limits
#include <string>

#include "io/gguf_internal.h"
#include "io/half_float.h"
#include "npeff/core/error.h"

namespace npeff::gguf {

namespace {

using io_detail::bf16_to_float;
using io_detail::half_to_float;
using io_detail::load_u16;

constexpr int kQK = 32;  // elements per block of Q4_0 .. Q8_0 (the K quants: 256)

inline float f16_at(const uint8_t* p) {
  return half_to_float(load_u16(p));
}

// ---- 32-element blocks -------------------------------------------------------------------------

// block_q4_0 (18 bytes): f16 d; u8 qs[16]. Element j: low nibble of qs[j]; j + 16: high nibble.
void q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// block_q4_1 (20 bytes): f16 d, f16 m; u8 qs[16]. y = q * d + m.
void q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// block_q5_0 (22 bytes): f16 d; u32 qh (bit j: fifth bit of element j); u8 qs[16].
void q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, sizeof(qh));
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int hi0 = static_cast<int>((qh >> j) & 1u) << 4;
    const int hi1 = static_cast<int>((qh >> (j + kQK / 2)) & 1u) << 4;
    y[j] = static_cast<float>(((qs[j] & 0x0F) | hi0) - 16) * d;
    y[j + kQK / 2] = static_cast<float>(((qs[j] >> 4) | hi1) - 16) * d;
  }
}

// block_q5_1 (24 bytes): f16 d, f16 m; u32 qh; u8 qs[16]. y = q * d + m.
void q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, sizeof(qh));
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int hi0 = static_cast<int>((qh >> j) & 1u) << 4;
    const int hi1 = static_cast<int>((qh >> (j + kQK / 2)) & 1u) << 4;
    y[j] = static_cast<float>((qs[j] & 0x0F) | hi0) * d + m;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) | hi1) * d + m;
  }
}

// block_q8_0 (34 bytes): f16 d; i8 qs[32].
void q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// ---- K quants (256-element super-blocks) -------------------------------------------------------

// The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K, packed in 12 bytes: bytes 0-3 hold
// the scales of sub-blocks 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 the same
// for the mins; bytes 8-11 the low 4 bits of scales (low nibble) and mins (high nibble) 4-7.
inline void k4_scale_min(int j, const uint8_t* s, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// block_q2_K (84 bytes): u8 scales[16] (low nibble scale, high nibble min of each 16 elements);
// u8 qs[64] (2 bits each); f16 d; f16 dmin. Element 128*h + 32*s + 16*k + l is bits 2s..2s+1 of
// qs[32*h + 16*k + l], with scales[8*h + 2*s + k].
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const float d = f16_at(b + 80);
  const float dmin = f16_at(b + 82);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = b + 16 + 32 * h;
    for (int s = 0; s < 4; ++s) {
      for (int k = 0; k < 2; ++k) {
        const uint8_t sc = scales[8 * h + 2 * s + k];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) {
          const int v = (q[16 * k + l] >> (2 * s)) & 3;
          *y++ = dl * static_cast<float>(v) - ml;
        }
      }
    }
  }
}

// block_q3_K (110 bytes): u8 hmask[32] (the third bit, inverted: set means +0, clear means -4);
// u8 qs[64] (low 2 bits); u8 scales[12] (sixteen 6-bit scales, offset by 32); f16 d.
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* s = b + 96;
  const float d = f16_at(b + 108);
  int scale[16];
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    scale[j] = (low | (high << 4)) - 32;
  }
  int is = 0;
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = b + 32 + 32 * h;
    for (int sh = 0; sh < 4; ++sh) {
      const uint8_t bit = static_cast<uint8_t>(1u << (4 * h + sh));
      for (int k = 0; k < 2; ++k) {
        const float dl = d * static_cast<float>(scale[is++]);
        for (int l = 16 * k; l < 16 * k + 16; ++l) {
          const int v = ((q[l] >> (2 * sh)) & 3) - ((hmask[l] & bit) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
    }
  }
}

// block_q4_K (144 bytes): f16 d, f16 dmin; u8 scales[12]; u8 qs[128]. Each 64 elements: 32 low
// nibbles (sub-block 2i), then 32 high nibbles (sub-block 2i + 1) of 32 bytes.
void q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const uint8_t* s = b + 4;
  const uint8_t* q = b + 16;
  for (int i = 0; i < 4; ++i, q += 32, y += 64) {
    int sc, m;
    k4_scale_min(2 * i, s, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    k4_scale_min(2 * i + 1, s, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// block_q5_K (176 bytes): f16 d, f16 dmin; u8 scales[12]; u8 qh[32] (fifth bits: bit 2i of qh[l]
// for element 64i + l, bit 2i + 1 for element 64i + 32 + l); u8 qs[128] as in Q4_K.
void q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const uint8_t* s = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* q = b + 48;
  for (int i = 0; i < 4; ++i, q += 32, y += 64) {
    int sc, m;
    k4_scale_min(2 * i, s, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    k4_scale_min(2 * i + 1, s, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int v = (q[l] & 0x0F) | (((qh[l] >> (2 * i)) & 1) << 4);
      y[l] = d1 * static_cast<float>(v) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const int v = (q[l] >> 4) | (((qh[l] >> (2 * i + 1)) & 1) << 4);
      y[32 + l] = d2 * static_cast<float>(v) - m2;
    }
  }
}

// block_q6_K (210 bytes): u8 ql[128] (low 4 bits); u8 qh[64] (high 2 bits); i8 scales[16]; f16 d.
// Per 128 elements (half h): ql[64h + l] low/high nibbles give elements l / l + 64, ql[64h + 32 +
// l] elements l + 32 / l + 96; bits 0-1, 2-3, 4-5, 6-7 of qh[32h + l] extend l, +32, +64, +96.
void q6_k(const uint8_t* b, float* y) {
  const float d = f16_at(b + 208);
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  for (int h = 0; h < 2; ++h, y += 128) {
    const uint8_t* ql = b + 64 * h;
    const uint8_t* qh = b + 128 + 32 * h;
    const int8_t* s = sc + 8 * h;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(s[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(s[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(s[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(s[is + 6]) * static_cast<float>(q4);
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_function(TensorType type) {
  switch (type) {
    case TensorType::Q4_0:
      return q4_0;
    case TensorType::Q4_1:
      return q4_1;
    case TensorType::Q5_0:
      return q5_0;
    case TensorType::Q5_1:
      return q5_1;
    case TensorType::Q8_0:
      return q8_0;
    case TensorType::Q2_K:
      return q2_k;
    case TensorType::Q3_K:
      return q3_k;
    case TensorType::Q4_K:
      return q4_k;
    case TensorType::Q5_K:
      return q5_k;
    case TensorType::Q6_K:
      return q6_k;
    default:
      return nullptr;
  }
}

std::string type_description(TensorType type) {
  return is_known_tensor_type(type) ? tensor_type_name(type)
                                    : "number " + std::to_string(static_cast<uint32_t>(type));
}

}  // namespace

bool can_dequantize(TensorType type) {
  return type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16 ||
         block_function(type) != nullptr;
}

void dequantize(TensorType type, const uint8_t* data, int64_t n_elements, float* out) {
  NPEFF_CHECK(can_dequantize(type), "tensor type ", type_description(type),
              " is not supported (npeff dequantises F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, ",
              "Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K)");
  const int64_t block = tensor_type_block_size(type);
  NPEFF_CHECK(n_elements >= 0 && n_elements % block == 0, "cannot dequantize ", n_elements,
              " elements of ", tensor_type_name(type), ": expected a non-negative multiple of ",
              "its block size ", block);
  if (n_elements == 0) return;
  NPEFF_ASSERT(data && out, "dequantize: null data or output");
  switch (type) {
    case TensorType::F32:
      std::memcpy(out, data, static_cast<std::size_t>(n_elements) * sizeof(float));
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n_elements; ++i) out[i] = half_to_float(load_u16(data + 2 * i));
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n_elements; ++i) out[i] = bf16_to_float(load_u16(data + 2 * i));
      return;
    default:
      break;
  }
  const BlockFn fn = block_function(type);
  const int64_t block_bytes = tensor_type_block_bytes(type);
  const int64_t n_blocks = n_elements / block;
  for (int64_t i = 0; i < n_blocks; ++i) fn(data + i * block_bytes, out + i * block);
}

std::vector<float> dequantize_tensor(const File& file, const TensorInfo& info) {
  const auto where = [&] {
    return "GGUF file '" + file.path() + "': tensor '" + detail::printable(info.name) + "'";
  };
  NPEFF_CHECK(can_dequantize(info.type), where(), ": tensor type ", type_description(info.type),
              " is not supported (npeff dequantises F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, ",
              "Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K)");
  const int64_t n = info.n_elements();
  const int64_t block = tensor_type_block_size(info.type);
  NPEFF_CHECK(n % block == 0 && static_cast<uint64_t>(n / block) *
                                        static_cast<uint64_t>(tensor_type_block_bytes(info.type)) ==
                                    info.nbytes,
              where(), ": ", info.nbytes, " bytes for shape ", detail::shape_string(info.shape),
              " of ", tensor_type_name(info.type), ", expected ",
              n / block * tensor_type_block_bytes(info.type), " (", n, " elements in blocks of ",
              block, ")");
  std::vector<float> out(static_cast<std::size_t>(n));
  dequantize(info.type, file.tensor_data(info), n, out.data());
  return out;
}

}  // namespace npeff::gguf
