// Writing raw bytes to a file, for the test file writers (gguf_writer.h, safetensors_writer.h)
// and for tests that write deliberately broken files. Header-only, no GoogleTest.
#pragma once

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace npeff::testing {

/// Replaces `path` with `bytes`; throws std::runtime_error when that fails (a test setup error,
/// not an npeff::Error that a test might expect).
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace npeff::testing
