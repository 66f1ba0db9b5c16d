#include <sys/stat.h>

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include "npeff/core/error.h"
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

}  // namespace npeff::model
