// libFuzzer target: any bytes as a GGUF file. Opening either succeeds or throws npeff::Error;
// every metadata value of an opened file is read, and every tensor whose type npeff dequantises is
// dequantised (at most kMaxElements elements of each; the reader already checks that tensor data
// lies inside the file). The file lives in /dev/shm when available: the reader memory-maps files.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "npeff/io/gguf_dequant.h"

namespace {
constexpr int64_t kMaxElements = int64_t{1} << 20;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/npeff_fuzz_gguf_" + std::to_string(getpid());
  }();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  namespace gg = npeff::gguf;
  try {
    const gg::File file = gg::File::open(path);
    std::size_t sink = 0;
    for (const auto& [key, value] : file.metadata()) {
      sink += key.size() + value.type_description().size();
      if (value.type() == gg::ValueType::STRING) sink += value.as_string().size();
      if (value.is_array() && value.element_type() == gg::ValueType::STRING) {
        for (const std::string& s : value.as_string_array()) sink += s.size();
      }
    }
    std::vector<float> buffer;
    for (const gg::TensorInfo& t : file.tensors()) {
      if (!gg::can_dequantize(t.type)) continue;
      const int64_t block = gg::tensor_type_block_size(t.type);
      int64_t n = t.n_elements();
      if (n > kMaxElements) n = kMaxElements / block * block;
      buffer.resize(static_cast<std::size_t>(n));
      gg::dequantize(t.type, file.tensor_data(t), n, buffer.data());
      if (t.n_elements() <= kMaxElements) sink += gg::dequantize_tensor(file, t).size();
    }
    (void)sink;
  } catch (const npeff::Error&) {
  }
  return 0;
}
