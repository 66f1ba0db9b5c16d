// Hugging Face model directories: config.json + model.safetensors (or model.safetensors.index.json
// and its shards), tokenizer.json (+ tokenizer_config.json). Weights of any float dtype
// (F32/F16/BF16/F64) are converted to float32.
#include <sys/stat.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

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

int64_t get_int(const json& c, const char* key, const std::string& src, int64_t fallback = -1) {
  const auto it = c.find(key);
  if (it == c.end() || it->is_null()) {
    NPEFF_CHECK(fallback >= 0, src, ": config.json has no ", key);
    return fallback;
  }
  NPEFF_CHECK(it->is_number_integer(), src, ": config.json ", key, " must be an integer, found ",
              it->dump());
  return it->get<int64_t>();
}
double get_double(const json& c, const char* key, double fallback, const std::string& src) {
  const auto it = c.find(key);
  if (it == c.end() || it->is_null()) return fallback;
  NPEFF_CHECK(it->is_number(), src, ": config.json ", key, " must be a number, found ", it->dump());
  return it->get<double>();
}
std::optional<int64_t> get_id(const json& c, const char* key) {
  const auto it = c.find(key);
  if (it == c.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer())
    return (*it)[0].get<int64_t>();
  return std::nullopt;
}
}  // namespace

ModelConfig parse_hf_config(const std::string& text, const std::string& src) {
  const json c = json::parse(text, nullptr, false);
  NPEFF_CHECK(!c.is_discarded() && c.is_object(), src, ": config.json is not a JSON object");
  ModelConfig m;
  const std::string type = c.value("model_type", std::string());
  NPEFF_CHECK(type == "llama" || type == "qwen2" || type == "mistral", src, ": model_type '", type,
              "' is not supported (llama, qwen2, mistral)");
  m.architecture = type == "qwen2" ? "qwen2" : "llama";
  const std::string act = c.value("hidden_act", std::string("silu"));
  NPEFF_CHECK(act == "silu", src, ": hidden_act '", act, "' is not supported (silu)");
  NPEFF_CHECK(!c.value("mlp_bias", false), src, ": mlp_bias is not supported");
  if (type == "mistral" || type == "qwen2") {
    const auto sw = c.find("sliding_window");
    const bool sliding =
        type == "qwen2" ? c.value("use_sliding_window", false) : (sw != c.end() && !sw->is_null());
    NPEFF_CHECK(!sliding, src, ": sliding-window attention is not supported");
  }
  m.vocab_size = get_int(c, "vocab_size", src);
  m.hidden_size = get_int(c, "hidden_size", src);
  m.intermediate_size = get_int(c, "intermediate_size", src);
  m.num_layers = get_int(c, "num_hidden_layers", src);
  m.num_heads = get_int(c, "num_attention_heads", src);
  m.num_kv_heads = get_int(c, "num_key_value_heads", src, m.num_heads);
  NPEFF_CHECK(m.num_heads > 0, src, ": num_attention_heads must be positive");
  m.head_dim = get_int(c, "head_dim", src, m.hidden_size / m.num_heads);
  m.max_position_embeddings = get_int(c, "max_position_embeddings", src, 2048);
  m.rms_norm_eps = get_double(c, "rms_norm_eps", 1e-6, src);
  m.tie_word_embeddings = c.value("tie_word_embeddings", false);
  m.attention_bias = type == "qwen2" || c.value("attention_bias", false);
  // RoPE: transformers < 5 writes rope_theta + rope_scaling; 5.x writes rope_parameters.
  json rope = json::object();
  if (c.contains("rope_scaling") && c["rope_scaling"].is_object()) rope = c["rope_scaling"];
  if (c.contains("rope_parameters") && c["rope_parameters"].is_object())
    rope.update(c["rope_parameters"]);
  m.rope_theta = get_double(rope, "rope_theta", get_double(c, "rope_theta", 10000.0, src), src);
  std::string rope_type = rope.value("rope_type", rope.value("type", std::string("default")));
  if (rope_type == "llama3") {
    RopeScaling r;
    r.type = "llama3";
    r.factor = get_double(rope, "factor", 8.0, src);
    r.low_freq_factor = get_double(rope, "low_freq_factor", 1.0, src);
    r.high_freq_factor = get_double(rope, "high_freq_factor", 4.0, src);
    r.original_max_position_embeddings =
        get_int(rope, "original_max_position_embeddings", src, 8192);
    m.rope_scaling = r;
  } else {
    NPEFF_CHECK(rope_type == "default", src, ": rope type '", rope_type,
                "' is not supported (default, llama3)");
  }
  m.bos_token_id = get_id(c, "bos_token_id");
  m.eos_token_id = get_id(c, "eos_token_id");
  m.pad_token_id = get_id(c, "pad_token_id");
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
  const ModelConfig config = parse_hf_config(text.str(), config_path);

  const bool single =
      !dir && path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
  const safetensors::Checkpoint ckpt = single ? safetensors::Checkpoint::open_file(path)
                                              : safetensors::Checkpoint::open_directory(root);
  std::vector<Parameter> params;
  std::map<std::string, int> dtypes;
  for (const auto& [name, shape] : LlamaModel::expected_parameters(config)) {
    const safetensors::TensorView* t = ckpt.find(name);
    NPEFF_CHECK(t != nullptr, ckpt.source(), ": missing tensor ", name, " (", config.summary(),
                ")");
    NPEFF_CHECK(t->shape == shape, ckpt.source(), ": tensor ", name, " has ", t->shape.size(),
                "-d shape ", at::IntArrayRef(t->shape), ", config.json implies ",
                at::IntArrayRef(shape));
    at::Tensor out = at::empty(shape, at::kFloat);
    safetensors::to_float32(*t, out.data_ptr<float>());
    params.push_back(Parameter{name, out});
    ++dtypes[safetensors::dtype_name(t->dtype)];
  }
  for (const std::string& name : ckpt.names()) {  // tolerated extras
    const bool known = std::any_of(params.begin(), params.end(),
                                   [&](const Parameter& p) { return p.name == name; });
    const bool harmless = name.find("rotary_emb.inv_freq") != std::string::npos ||
                          (config.tie_word_embeddings && name == "lm_head.weight");
    NPEFF_CHECK(known || harmless, ckpt.source(), ": unexpected tensor ", name, " for a ",
                config.summary());
  }
  LoadedModel loaded;
  loaded.model = std::make_unique<LlamaModel>(config, std::move(params), path);
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
