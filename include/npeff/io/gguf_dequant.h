// Dequantisation of GGUF tensor data to float32 (no LibTorch, no HDF5: part of npeff_base).
// Block layouts and formulas are those of ggml's dequantize_row_* (ggml/src/ggml-quants.c,
// block structs in ggml/src/ggml-common.h); results are bit-identical to gguf-py's numpy
// dequantiser (tests/unit/test_gguf_dequant.cpp). See docs/gguf.md, "Dequantisation".
#pragma once

#include <cstdint>
#include <vector>

#include "npeff/io/gguf.h"

namespace npeff::gguf {

/// True for the types npeff dequantises: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K,
/// Q3_K, Q4_K, Q5_K, Q6_K.
bool can_dequantize(TensorType type);

/// Converts `n_elements` values (a multiple of the type's block size; npeff::Error otherwise) at
/// `data` (n_elements / block_size * block_bytes bytes) to float32 in `out`. Unsupported types:
/// npeff::Error naming the type, e.g. "tensor type IQ2_XXS is not supported ...".
void dequantize(TensorType type, const uint8_t* data, int64_t n_elements, float* out);

/// Dequantizes a whole tensor of `file` (checks that info.nbytes matches its shape and type).
/// Errors name the tensor and the file.
std::vector<float> dequantize_tensor(const File& file, const TensorInfo& info);

}  // namespace npeff::gguf
