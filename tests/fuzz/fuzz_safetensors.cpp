// libFuzzer target: any bytes as a safetensors file. Opening either succeeds or throws
// npeff::Error; every tensor of an opened file is read (its bytes, and to_float32 for the float
// dtypes). The file lives in /dev/shm when available: the reader memory-maps files.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/npeff_fuzz_safetensors_" + std::to_string(getpid());
  }();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  namespace st = npeff::safetensors;
  try {
    const st::File file = st::File::open(path);
    std::vector<float> buffer;
    unsigned sink = 0;
    for (const st::TensorView& t : file.tensors()) {
      for (uint64_t i = t.begin; i < t.end; ++i) sink += t.data[i - t.begin];
      if (t.dtype == st::Dtype::F32 || t.dtype == st::Dtype::F16 || t.dtype == st::Dtype::BF16 ||
          t.dtype == st::Dtype::F64) {
        // numel * dtype_size == end - begin <= the file size: no huge allocation is possible.
        buffer.resize(static_cast<std::size_t>(t.numel()));
        st::to_float32(t, buffer.data());
      }
      if (file.find(t.name) != &t) __builtin_trap();
    }
    for (const auto& [key, value] : file.metadata()) sink += key.size() + value.size();
    (void)sink;
  } catch (const npeff::Error&) {
  }
  return 0;
}
