// Hugging Face model directories: config.json + model.safetensors (or model.safetensors.index.json
// and its shards), tokenizer.json (+ tokenizer_config.json). Weights of any float dtype
// (F32/F16/BF16/F64) are converted to float32.
#include <sys/stat.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/family.h"
#include "npeff/core/error.h"
#include "npeff/io/safetensors.h"
#include "npeff/model/loader.h"

namespace npeff::model {

namespace {
using json = nlohmann::json;

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}
bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
std::string dir_of(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

}  // namespace

ModelConfig parse_hf_config(const std::string& text, const std::string& src) {
  const json j = json::parse(text, nullptr, false);
  NPEFF_CHECK(!j.is_discarded() && j.is_object(), src, ": config.json is not a JSON object");
  const HfConfig c(j, src);
  const std::string type = c.string("model_type", "");
  NPEFF_CHECK(type != "gemma3", src,
              ": model_type 'gemma3' is the multimodal Gemma 3 (Gemma3ForConditionalGeneration); "
              "npeff runs the text model (model_type 'gemma3_text', Gemma3ForCausalLM, e.g. "
              "gemma-3-270m and gemma-3-1b)");
  const Family* family = family_by_hf_type(type);
  NPEFF_CHECK(family != nullptr, src, ": model_type '", type,
              "' is not supported (supported: ", supported_hf_types(), ")");
  ModelConfig m;
  m.architecture = family->name;
  if (family->common_hf_keys) family::parse_common_hf(c, m);
  family->parse_hf(c, m);
  family::parse_hf_ids(c, m);
  m.validate(src);
  return m;
}

LoadedModel load_hf_model(const std::string& path, const LoadOptions& options) {
  const bool dir = is_dir(path);
  const std::string root = dir ? path : dir_of(path);
  const std::string config_path = root + "/config.json";
  std::ifstream in(config_path);
  NPEFF_CHECK(in.good(), path, ": no config.json (expected a Hugging Face model directory)");
  std::ostringstream text;
  text << in.rdbuf();
  ModelConfig config = parse_hf_config(text.str(), config_path);
  // generate() stops at generation_config.json's eos_token_id when the file has one (an int or
  // a list), as transformers' GenerationConfig does; else at config.json's.
  if (std::ifstream gen(root + "/generation_config.json"); gen.good()) {
    std::ostringstream g;
    g << gen.rdbuf();
    const json gj = json::parse(g.str(), nullptr, false);
    NPEFF_CHECK(!gj.is_discarded() && gj.is_object(), root,
                "/generation_config.json is not a JSON object");
    ModelConfig ids;
    family::parse_hf_ids(HfConfig(gj, root + "/generation_config.json"), ids);
    if (!ids.eos_token_ids.empty()) config.eos_token_ids = ids.eos_token_ids;
  }
  const Family& family = family_of(config);

  const bool single =
      !dir && path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
  const safetensors::Checkpoint ckpt = single ? safetensors::Checkpoint::open_file(path)
                                              : safetensors::Checkpoint::open_directory(root);
  std::vector<Parameter> params;
  std::map<std::string, int> dtypes;
  std::set<std::string> stored_names;  // names found without the base-model prefix
  for (const TensorSpec& spec : family.tensors(config)) {
    const std::string& name = spec.name;
    const safetensors::TensorView* t = ckpt.find(name);
    const std::string& prefix = family.hf_base_prefix;
    if (t == nullptr && name.compare(0, prefix.size(), prefix) == 0) {
      t = ckpt.find(name.substr(prefix.size()));  // a base-model checkpoint
      if (t != nullptr) stored_names.insert(name.substr(prefix.size()));
    }
    NPEFF_CHECK(t != nullptr, ckpt.source(), ": missing tensor ", name, " (", config.summary(),
                ")");
    // GPT-2's Conv1D weights are stored [in, out]; npeff holds [out, in].
    std::vector<int64_t> stored = spec.shape;
    if (spec.hf_transposed) std::reverse(stored.begin(), stored.end());
    NPEFF_CHECK(t->shape == stored, ckpt.source(), ": tensor ", name, " has ", t->shape.size(),
                "-d shape ", at::IntArrayRef(t->shape), ", config.json implies ",
                at::IntArrayRef(stored));
    at::Tensor out = at::empty(stored, at::kFloat);
    safetensors::to_float32(*t, out.data_ptr<float>());
    if (spec.hf_transposed) out = out.t().contiguous();
    params.push_back(Parameter{name, out});
    ++dtypes[safetensors::dtype_name(t->dtype)];
  }
  for (const std::string& name : ckpt.names()) {  // tolerated extras
    const bool known = stored_names.count(name) != 0 ||
                       std::any_of(params.begin(), params.end(),
                                   [&](const Parameter& p) { return p.name == name; });
    const auto ends_with = [&](const std::string& suffix) {
      return name.size() >= suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    const bool harmless = std::any_of(family.ignored_hf_tensors.begin(),
                                      family.ignored_hf_tensors.end(), ends_with) ||
                          (config.tie_word_embeddings && name == "lm_head.weight");
    NPEFF_CHECK(known || harmless, ckpt.source(), ": unexpected tensor ", name, " for a ",
                config.summary());
  }
  LoadedModel loaded;
  loaded.model = std::make_unique<CausalLM>(config, std::move(params), path);
  loaded.format = "hf";
  loaded.path = path;
  for (const auto& [dt, n] : dtypes)
    loaded.details += (loaded.details.empty() ? "" : ", ") + std::to_string(n) + " " + dt;
  const std::string tok =
      !options.tokenizer_path.empty() ? options.tokenizer_path : root + "/tokenizer.json";
  if (!options.tokenizer_path.empty() || exists(tok)) {
    loaded.tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::load_tokenizer(tok));
  }
  return loaded;
}

}  // namespace npeff::model
