// GGUF (llama.cpp) checkpoints of every family with a GGUF form (src/model/families/):
// hyperparameters from {arch}.* metadata, tensors dequantised to float32, llama.cpp's tensor names
// mapped to HF's, and llama.cpp's conversions undone by the family (q/k rotary permutation of
// "llama", Gemma's norm + 1, GPT-NeoX's qkv order).
#include <ATen/ATen.h>

#include "model/family.h"
#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "npeff/io/gguf_dequant.h"
#include "npeff/model/loader.h"

namespace npeff::model {

LoadedModel load_gguf_model(const std::string& path, const LoadOptions& options) {
  const gguf::File file = gguf::File::open(path);
  const std::string arch = file.at("general.architecture").as_string();
  const Family* family = family_by_gguf_arch(arch);
  NPEFF_CHECK(family != nullptr && family->parse_gguf, path, ": general.architecture '", arch,
              "' is not supported (supported: ", supported_gguf_archs(), ")");
  ModelConfig c;
  c.architecture = family->name;
  const GgufConfig g(file, arch);
  family::parse_common_gguf(g, c);
  family->parse_gguf(g, c);
  c.validate(path);

  std::vector<Parameter> params;
  std::map<std::string, int> types;
  for (const TensorSpec& spec : family->tensors(c)) {
    const std::string& name = spec.name;
    const std::vector<int64_t>& shape = spec.shape;
    const std::string& gname = spec.gguf_name;
    const gguf::TensorInfo* info = file.find_tensor(gname);
    NPEFF_CHECK(info != nullptr, path, ": missing tensor ", gname, " (", name, ")");
    // GGUF lists dimensions fastest first: ne = [in, out] is HF's [out, in].
    std::vector<int64_t> reversed(info->shape.rbegin(), info->shape.rend());
    NPEFF_CHECK(reversed == shape, path, ": tensor ", gname, " has shape ",
                at::IntArrayRef(reversed), " (HF order), the metadata implies ",
                at::IntArrayRef(shape));
    NPEFF_CHECK(gguf::can_dequantize(info->type), path, ": tensor ", gname, " has type ",
                gguf::tensor_type_name(info->type), ", which npeff cannot dequantise");
    std::vector<float> values = gguf::dequantize_tensor(file, *info);
    at::Tensor t = at::from_blob(values.data(), shape, at::kFloat).clone();
    if (family->from_gguf) t = family->from_gguf(spec, c, t);  // undo llama.cpp's conversions
    params.push_back(Parameter{name, t});
    ++types[gguf::tensor_type_name(info->type)];
  }
  LoadedModel loaded;
  loaded.model = std::make_unique<CausalLM>(c, std::move(params), path);
  loaded.format = "gguf";
  loaded.path = path;
  for (const auto& [type, n] : types) {
    loaded.details += (loaded.details.empty() ? "" : ", ") + std::to_string(n) + " " + type;
  }
  if (!options.tokenizer_path.empty()) {
    loaded.tokenizer =
        std::make_unique<tokenizer::Tokenizer>(tokenizer::load_tokenizer(options.tokenizer_path));
  } else if (const gguf::Value* kind = file.find("tokenizer.ggml.model");
             kind != nullptr && kind->as_string() != "none") {  // "none": written without vocab
    loaded.tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::load_gguf_tokenizer(path));
  }
  return loaded;
}

}  // namespace npeff::model
