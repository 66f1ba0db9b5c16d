#include <sys/stat.h>

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include <dirent.h>

#include <algorithm>
#include <cstdio>

#include "model/llama2c_header.h"
#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "npeff/io/mapped_file.h"
#include "npeff/model/loader.h"

namespace npeff::model {

at::Tensor unpermute_rotary_rows(const at::Tensor& w, int64_t heads) {
  const int64_t rows = w.size(0);
  NPEFF_ASSERT(rows % (2 * heads) == 0, "rotary rows ", rows, " not divisible by 2 * ", heads);
  std::vector<int64_t> shape = {heads, rows / heads / 2, 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

LoadedModel load_model(const std::string& path, const LoadOptions& options) {
  struct stat st {};
  NPEFF_CHECK(::stat(path.c_str(), &st) == 0, "model path does not exist: ", path);
  LoadedModel loaded;
  if (S_ISDIR(st.st_mode) ||
      (path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0) ||
      (path.size() > 11 && path.compare(path.size() - 11, 11, "config.json") == 0)) {
    loaded = load_hf_model(path, options);
  } else {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {0, 0, 0, 0};
    in.read(magic, 4);
    loaded = (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0)
                 ? load_gguf_model(path, options)
                 : load_llama2c_model(path, options);
  }
  NPEFF_CHECK(loaded.tokenizer || !options.require_tokenizer, path,
              ": no tokenizer found with the model; give one with --tokenizer");
  return loaded;
}

std::unique_ptr<tokenizer::Tokenizer> load_model_tokenizer(const std::string& path,
                                                           const std::string& tokenizer_path) {
  using tokenizer::Tokenizer;
  if (!tokenizer_path.empty())
    return std::make_unique<Tokenizer>(tokenizer::load_tokenizer(tokenizer_path));
  struct stat st {};
  NPEFF_CHECK(::stat(path.c_str(), &st) == 0, "model path does not exist: ", path);
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const auto exists = [](const std::string& p) {
    struct stat s {};
    return ::stat(p.c_str(), &s) == 0;
  };
  // The same places the loaders look (load_hf.cpp, load_gguf.cpp, load_llama2c.cpp).
  if (S_ISDIR(st.st_mode) ||
      (path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0) ||
      (path.size() > 11 && path.compare(path.size() - 11, 11, "config.json") == 0)) {
    const std::string tok = (S_ISDIR(st.st_mode) ? path : dir) + "/tokenizer.json";
    if (!exists(tok)) return nullptr;
    return std::make_unique<Tokenizer>(tokenizer::load_tokenizer(tok));
  }
  std::ifstream in(path, std::ios::binary);
  char head[4] = {0};
  in.read(head, sizeof head);
  if (in.gcount() == 4 && std::memcmp(head, "GGUF", 4) == 0) {
    const gguf::File f = gguf::File::open(path);
    const gguf::Value* kind = f.find("tokenizer.ggml.model");
    if (kind == nullptr || kind->as_string() == "none") return nullptr;  // no vocabulary
    return std::make_unique<Tokenizer>(tokenizer::load_gguf_tokenizer(path));
  }
  const int64_t V = read_llama2c_header(path).vocab_size;  // version 0 or 1
  for (const std::string& name :
       {std::string("tokenizer.bin"), "tok" + std::to_string(V) + ".bin"}) {
    if (exists(dir + "/" + name))
      return std::make_unique<Tokenizer>(tokenizer::load_llama2c_tokenizer(dir + "/" + name, V));
  }
  return nullptr;
}

namespace {
struct Fnv1a64 {
  uint64_t h = 0xcbf29ce484222325ULL;
  // Eight bytes per step: fast enough (~1 GB/s) to fingerprint a checkpoint on every run.
  void add(const uint8_t* p, uint64_t n) {
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  }
  void add(const std::string& s) { add(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
};
}  // namespace

std::string content_hash(const std::string& path) {
  struct stat st {};
  NPEFF_CHECK(::stat(path.c_str(), &st) == 0, "cannot read '", path, "'");
  std::vector<std::string> files;
  if (S_ISDIR(st.st_mode)) {
    DIR* dir = ::opendir(path.c_str());
    NPEFF_CHECK(dir != nullptr, "cannot list directory '", path, "'");
    while (const dirent* e = ::readdir(dir)) {
      const std::string f = path + "/" + e->d_name;
      struct stat fs {};
      if (::stat(f.c_str(), &fs) == 0 && S_ISREG(fs.st_mode)) files.push_back(e->d_name);
    }
    ::closedir(dir);
    std::sort(files.begin(), files.end());
  }
  Fnv1a64 hash;
  const auto add_file = [&](const std::string& f) {
    const io::MappedFile m = io::MappedFile::open(f, "model file");
    hash.add(std::to_string(m.size()));
    hash.add(m.data(), m.size());
  };
  if (S_ISDIR(st.st_mode)) {
    for (const std::string& name : files) {
      hash.add(name);
      add_file(path + "/" + name);
    }
  } else {
    add_file(path);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash.h));
  return std::string("fnv1a64:") + hex;
}

}  // namespace npeff::model
