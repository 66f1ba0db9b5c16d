// The header of a llama2.c checkpoint (karpathy/llama2.c export.py): version 0 (legacy_export,
// run.c's format: 7 int32, no magic) or version 1 (version1_export: a 256-byte header starting
// with the magic 0x616b3432 "ak42" and the version). Shared by load_llama2c.cpp (the weights)
// and load.cpp (the vocabulary size, to find tok<N>.bin). Private to npeff_core.
#pragma once

#include <cstdint>
#include <string>

namespace npeff::model {

struct Llama2cHeader {
  int version = 0;           // 0 or 1
  int64_t header_bytes = 0;  // 28 or 256
  int64_t file_bytes = 0;
  // dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len as written (version 0:
  // a negative vocab_size means an unshared classifier).
  int32_t fields[7] = {0, 0, 0, 0, 0, 0, 0};
  int64_t vocab_size = 0;  // |fields[5]|
  bool shared_classifier = true;
};

// Reads and checks the header of `path`. Throws npeff::Error for a file too short for a header,
// implausible sizes, a Git LFS pointer, or an 'ak42' export of a version other than 1 (version
// 2 is int8 Q8_0, which npeff does not read).
Llama2cHeader read_llama2c_header(const std::string& path);

}  // namespace npeff::model
