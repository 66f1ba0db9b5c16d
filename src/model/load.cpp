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

}  // namespace npeff::model
