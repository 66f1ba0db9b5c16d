// Exact conversions of IEEE half (binary16) and bfloat16 bit patterns to float32, shared by the
// safetensors reader and the GGUF dequantiser (src/io/safetensors.cpp, src/io/gguf_dequant.cpp).
// Integer-only: exact for every pattern (subnormals, infinities, NaN payloads are kept), and
// independent of the floating-point environment (flush-to-zero / denormals-are-zero).
#pragma once

#include <cstdint>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors and GGUF data are little-endian; so must the host be");

namespace npeff::io_detail {

inline float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

/// binary16 -> binary32 bits. Normal numbers rebias the exponent (15 -> 127); subnormals
/// (exponent 0, mantissa m: m * 2^-24) are normalised; Inf/NaN keep their payload.
inline uint32_t half_to_float_bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return sign | 0x7f800000u | (mantissa << 13);
  if (exponent != 0) return sign | ((exponent + 112) << 23) | (mantissa << 13);
  if (mantissa == 0) return sign;
  // The leading one of the mantissa is at bit p (0..9): value 2^(p-24) * 1.xxx.
  const int p = 31 - __builtin_clz(mantissa);
  return sign | (static_cast<uint32_t>(p + 103) << 23) | ((mantissa << (23 - p)) & 0x7fffffu);
}

inline float half_to_float(uint16_t h) {
  return float_from_bits(half_to_float_bits(h));
}

inline float bf16_to_float(uint16_t h) {
  return float_from_bits(static_cast<uint32_t>(h) << 16);
}

/// Little-endian 16-bit load from unaligned memory.
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace npeff::io_detail
