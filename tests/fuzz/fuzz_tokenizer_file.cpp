// libFuzzer target: any bytes as a tokenizer file given to load_tokenizer (the first bytes pick
// the loader: "GGUF" -> GGUF vocabulary, '{' -> tokenizer.json, otherwise llama2.c tokenizer.bin).
// The file lives in /dev/shm when available: the GGUF reader memory-maps files.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "npeff/core/error.h"
#include "npeff/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/npeff_fuzz_tokenizer_" + std::to_string(getpid());
  }();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const auto tok = npeff::tokenizer::load_tokenizer(path);
    for (const char* probe : {"", "Hello world!", "  <s> 12345 \xC3\xA9\xF0\x9F\x98\x80\n\t"}) {
      const auto ids = tok.encode(probe);
      tok.decode(ids);
    }
  } catch (const npeff::Error&) {
  }
  return 0;
}
