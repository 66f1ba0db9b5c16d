#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "npeff/core/error.h"
#include "npeff/io/mapped_file.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::tokenizer {

namespace {
bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}
bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
}  // namespace

Tokenizer load_tokenizer(const std::string& path) {
  NPEFF_CHECK(exists(path), "tokenizer path does not exist: ", path);
  if (is_directory(path)) {
    for (const char* name : {"/tokenizer.json", "/tokenizer.bin"}) {
      if (exists(path + name)) return load_tokenizer(path + name);
    }
    NPEFF_FAIL(path, " is a directory without tokenizer.json or tokenizer.bin");
  }
  std::ifstream in(path, std::ios::binary);
  NPEFF_CHECK(in.good(), "cannot open tokenizer file ", path);
  // A Git LFS pointer saved in place of tokenizer.json (common for Hub clones without LFS).
  char pointer[1024] = {0};
  in.read(pointer, sizeof pointer);
  io::check_not_lfs_pointer(path, reinterpret_cast<const uint8_t*>(pointer),
                            static_cast<uint64_t>(in.gcount()));
  in.clear();
  in.seekg(0);
  char head[4] = {0, 0, 0, 0};
  in.read(head, 4);
  if (in.gcount() == 4 && std::memcmp(head, "GGUF", 4) == 0) return load_gguf_tokenizer(path);
  // JSON starts with '{' (possibly after whitespace); llama2.c starts with an int32 length.
  in.clear();
  in.seekg(0);
  char c = 0;
  while (in.get(c) && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
  }
  if (c == '{' || ends_with(path, ".json")) return load_hf_tokenizer_json(path);
  return load_llama2c_tokenizer(path);
}

}  // namespace npeff::tokenizer
