// What family files share: config.json / GGUF accessors, the keys every family spells the same
// way, RoPE scaling forms, and the Llama tensor layout most families reuse.
#include <ATen/ATen.h>

#include "model/family.h"
#include "npeff/core/error.h"
#include "npeff/io/gguf.h"

namespace npeff::model {

using json = nlohmann::json;

// ---- HfConfig ---------------------------------------------------------------------------------

bool HfConfig::has(const char* key) const {
  const auto it = j_.find(key);
  return it != j_.end() && !it->is_null();
}
int64_t HfConfig::integer(const char* key) const {
  NPEFF_CHECK(has(key), source_, ": config.json has no ", key);
  return integer(key, 0);
}
int64_t HfConfig::integer(const char* key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const json& v = j_.at(key);
  NPEFF_CHECK(v.is_number_integer(), source_, ": config.json ", key, " must be an integer, found ",
              v.dump());
  return v.get<int64_t>();
}
double HfConfig::number(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  const json& v = j_.at(key);
  NPEFF_CHECK(v.is_number(), source_, ": config.json ", key, " must be a number, found ", v.dump());
  return v.get<double>();
}
bool HfConfig::boolean(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  const json& v = j_.at(key);
  NPEFF_CHECK(v.is_boolean(), source_, ": config.json ", key, " must be true or false, found ",
              v.dump());
  return v.get<bool>();
}
std::string HfConfig::string(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const json& v = j_.at(key);
  NPEFF_CHECK(v.is_string(), source_, ": config.json ", key, " must be a string, found ", v.dump());
  return v.get<std::string>();
}
void HfConfig::require(bool ok, const std::string& what) const {
  NPEFF_CHECK(ok, source_, ": ", what);
}

// ---- GgufConfig -------------------------------------------------------------------------------

bool GgufConfig::has(const std::string& key) const {
  return f_.find(arch_ + "." + key) != nullptr;
}
int64_t GgufConfig::integer(const std::string& key) const {
  return f_.at(arch_ + "." + key).as_int64();
}
int64_t GgufConfig::integer(const std::string& key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}
double GgufConfig::number(const std::string& key, double fallback) const {
  return has(key) ? f_.at(arch_ + "." + key).as_double() : fallback;
}
std::string GgufConfig::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? f_.at(arch_ + "." + key).as_string() : fallback;
}
std::vector<int64_t> GgufConfig::integers(const std::string& key) const {
  const gguf::Value& v = f_.at(arch_ + "." + key);
  return v.is_array() ? v.as_int_array() : std::vector<int64_t>{v.as_int64()};
}
bool GgufConfig::has_tensor(const std::string& name) const {
  return f_.find_tensor(name) != nullptr;
}

namespace family {

std::string layer_name(int64_t layer, const std::string& rest) {
  return "model.layers." + std::to_string(layer) + "." + rest;
}

std::optional<RopeScaling> parse_rope_scaling(const HfConfig& c, const json& rope) {
  const HfConfig r(rope, c.source() + " (rope scaling)");
  std::string type = r.string("rope_type", r.string("type", "default"));
  if (type == "su") type = "longrope";  // the early Phi-3 name of longrope
  if (type == "default") return std::nullopt;
  const std::vector<std::string> known = {"linear", "dynamic", "yarn", "longrope", "llama3"};
  NPEFF_CHECK(std::find(known.begin(), known.end(), type) != known.end(), c.source(),
              ": rope type '", type,
              "' is not supported (default, linear, dynamic, yarn, longrope, llama3)");
  RopeScaling s;
  s.type = type;
  s.factor = r.number("factor", 0.0);  // 0: absent (yarn, longrope derive it)
  // Phi-3 keeps the pre-extension context at the top level of config.json, and transformers
  // gives that one priority.
  s.original_max_position_embeddings = c.integer("original_max_position_embeddings",
                                                 r.integer("original_max_position_embeddings", 0));
  s.low_freq_factor = r.number("low_freq_factor", 1.0);
  s.high_freq_factor = r.number("high_freq_factor", 4.0);
  s.beta_fast = r.number("beta_fast", 32.0);
  s.beta_slow = r.number("beta_slow", 1.0);
  if (r.has("mscale")) s.mscale = r.number("mscale", 1.0);
  if (r.has("mscale_all_dim")) s.mscale_all_dim = r.number("mscale_all_dim", 1.0);
  s.truncate = r.boolean("truncate", true);
  if (r.has("attention_factor")) s.attention_factor = r.number("attention_factor", 1.0);
  const auto factors = [&](const char* key) {
    std::vector<double> out;
    if (!r.has(key)) return out;
    NPEFF_CHECK(rope.at(key).is_array(), c.source(), ": rope ", key, " must be a list");
    for (const json& v : rope.at(key)) {
      NPEFF_CHECK(v.is_number(), c.source(), ": rope ", key, " must hold numbers, found ",
                  v.dump());
      out.push_back(v.get<double>());
    }
    return out;
  };
  s.short_factor = factors("short_factor");
  s.long_factor = factors("long_factor");
  NPEFF_CHECK(s.factor > 0 || (!r.has("factor") && (type == "yarn" || type == "longrope")),
              c.source(), ": rope type '", type, "' needs a positive factor");
  if (type == "llama3") {  // transformers requires both (KeyError otherwise)
    NPEFF_CHECK(r.has("low_freq_factor") && r.has("high_freq_factor"), c.source(),
                ": llama3 rope scaling needs low_freq_factor and high_freq_factor");
  }
  if (type == "longrope") {
    NPEFF_CHECK(!s.short_factor.empty() && s.short_factor.size() == s.long_factor.size(),
                c.source(), ": longrope needs short_factor and long_factor lists of equal length");
  }
  return s;
}

std::vector<bool> sliding_layer_types(const HfConfig& c) {
  const json& types = c.raw()["layer_types"];
  NPEFF_CHECK(types.is_array(), c.source(), ": config.json layer_types must be a list");
  std::vector<bool> out;
  for (const json& t : types) {
    NPEFF_CHECK(t.is_string() && (t == "sliding_attention" || t == "full_attention"), c.source(),
                ": config.json layer_types entries must be \"sliding_attention\" or "
                "\"full_attention\", found ",
                t.dump());
    out.push_back(t == "sliding_attention");
  }
  return out;
}

void parse_common_hf(const HfConfig& c, ModelConfig& m) {
  m.vocab_size = c.integer("vocab_size");
  m.hidden_size = c.integer("hidden_size");
  m.intermediate_size = c.integer("intermediate_size", 0);
  m.num_layers = c.integer("num_hidden_layers");
  m.num_heads = c.integer("num_attention_heads");
  m.num_kv_heads = c.integer("num_key_value_heads", m.num_heads);
  NPEFF_CHECK(m.num_heads > 0, c.source(), ": num_attention_heads must be positive");
  m.head_dim = c.integer("head_dim", m.hidden_size / m.num_heads);
  m.max_position_embeddings = c.integer("max_position_embeddings", 2048);
  m.rms_norm_eps = c.number("rms_norm_eps", 1e-6);
  m.tie_word_embeddings = c.boolean("tie_word_embeddings", false);
  // RoPE: transformers < 5 writes rope_theta + rope_scaling; 5.x writes rope_parameters.
  json rope = json::object();
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!c.has(key)) continue;
    NPEFF_CHECK(c.raw()[key].is_object(), c.source(), ": config.json ", key,
                " must be an object (or null), found ", c.raw()[key].dump());
    rope.update(c.raw()[key]);
  }
  const HfConfig r(rope, c.source());
  m.rope_theta = r.number("rope_theta", c.number("rope_theta", 10000.0));
  m.partial_rotary_factor =
      r.number("partial_rotary_factor", c.number("partial_rotary_factor", 1.0));
  if (!rope.contains("full_attention")) m.rope_scaling = parse_rope_scaling(c, rope);
}

void parse_hf_ids(const HfConfig& c, ModelConfig& m) {
  // Ids: an int, or a list (Llama 3.x: eos_token_id [128001, 128008, 128009]).
  const auto ids = [&](const char* key) {
    std::vector<int64_t> out;
    if (!c.has(key)) return out;
    const json& v = c.raw()[key];
    const bool ok = v.is_number_integer() ||
                    (v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) {
                       return e.is_number_integer();
                     }));
    NPEFF_CHECK(ok, c.source(), ": ", key, " must be an integer or a list of integers, found ",
                v.dump());
    if (v.is_number_integer()) out.push_back(v.get<int64_t>());
    if (v.is_array())
      for (const json& e : v) out.push_back(e.get<int64_t>());
    return out;
  };
  if (auto b = ids("bos_token_id"); !b.empty()) m.bos_token_id = b[0];
  if (auto p = ids("pad_token_id"); !p.empty()) m.pad_token_id = p[0];
  m.eos_token_ids = ids("eos_token_id");
  if (!m.eos_token_ids.empty()) m.eos_token_id = m.eos_token_ids[0];
}

void parse_common_gguf(const GgufConfig& g, ModelConfig& m) {
  const gguf::File& f = g.file();
  m.hidden_size = g.integer("embedding_length");
  m.num_layers = g.integer("block_count");
  m.intermediate_size = g.has("feed_forward_length") ? g.integers("feed_forward_length")[0] : 0;
  m.num_heads = g.integers("attention.head_count")[0];
  m.num_kv_heads =
      g.has("attention.head_count_kv") ? g.integers("attention.head_count_kv")[0] : m.num_heads;
  NPEFF_CHECK(m.num_heads > 0, f.path(), ": attention.head_count must be positive");
  m.head_dim = g.integer("attention.key_length", m.hidden_size / m.num_heads);
  m.max_position_embeddings = g.integer("context_length", 2048);
  m.rms_norm_eps =
      g.number("attention.layer_norm_rms_epsilon", g.number("attention.layer_norm_epsilon", 1e-5));
  m.rope_theta = g.number("rope.freq_base", 10000.0);
  if (g.has("rope.dimension_count") && m.head_dim > 0)
    m.partial_rotary_factor = static_cast<double>(g.integer("rope.dimension_count")) / m.head_dim;
  // RoPE scaling as llama.cpp stores it: rope.scaling.type/factor/original_context_length and
  // attn_factor, or frequency-factor tensors (rope_freqs: Llama 3; rope_factors_*: longrope).
  std::string type = g.string("rope.scaling.type", "none");
  const double factor = g.number("rope.scaling.factor", 0.0);
  if (type == "none" && factor > 1.0) type = "linear";  // older files: factor without a type
  NPEFF_CHECK(type == "none" || type == "linear" || type == "yarn" || type == "longrope", f.path(),
              ": GGUF rope.scaling.type '", type,
              "' is not supported (none, linear, yarn, longrope)");
  if (type != "none") {
    RopeScaling s;
    s.type = type;
    s.factor = factor > 0 ? factor : 1.0;
    s.original_max_position_embeddings = g.integer("rope.scaling.original_context_length", 0);
    if (g.has("rope.scaling.attn_factor"))
      s.attention_factor = g.number("rope.scaling.attn_factor", 1.0);
    if (type == "yarn") {
      s.beta_fast = g.number("rope.scaling.yarn_beta_fast", 32.0);
      s.beta_slow = g.number("rope.scaling.yarn_beta_slow", 1.0);
    }
    m.rope_scaling = s;
  }
  const auto tensor_values = [&](const char* name) {
    std::vector<double> out;
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (t == nullptr) return out;
    NPEFF_CHECK(t->type == gguf::TensorType::F32, f.path(), ": ", name, " must be F32");
    const float* p = reinterpret_cast<const float*>(f.tensor_data(*t));
    out.assign(p, p + t->n_elements());
    return out;
  };
  if (f.find_tensor("rope_freqs.weight") != nullptr) {
    // Llama 3.x: llama.cpp stores the per-pair divisors HF's llama3 rule computes.
    RopeScaling s = m.rope_scaling.value_or(RopeScaling{});
    s.type = "factors";
    s.long_factor = s.short_factor = tensor_values("rope_freqs.weight");
    m.rope_scaling = s;
  }
  if (f.find_tensor("rope_factors_long.weight") != nullptr) {
    RopeScaling s = m.rope_scaling.value_or(RopeScaling{});
    s.type = "longrope";
    s.long_factor = tensor_values("rope_factors_long.weight");
    s.short_factor = tensor_values("rope_factors_short.weight");
    m.rope_scaling = s;
  }
  // Phi-3 GGUFs carry longrope as factor tensors and an attention factor without a type.
  if (m.rope_scaling && !m.rope_scaling->attention_factor && g.has("rope.scaling.attn_factor"))
    m.rope_scaling->attention_factor = g.number("rope.scaling.attn_factor", 1.0);
  if (m.rope_scaling && m.rope_scaling->original_max_position_embeddings == 0)
    m.rope_scaling->original_max_position_embeddings =
        g.integer("rope.scaling.original_context_length", 0);
  const gguf::TensorInfo& embd = f.tensor("token_embd.weight");
  NPEFF_CHECK(embd.shape.size() == 2, f.path(), ": token_embd.weight must be 2-d");
  m.vocab_size = g.integer("vocab_size", embd.shape[1]);
  m.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  if (const gguf::Value* v = f.find("tokenizer.ggml.bos_token_id")) m.bos_token_id = v->as_int64();
  if (const gguf::Value* v = f.find("tokenizer.ggml.eos_token_id")) {
    m.eos_token_id = v->as_int64();
    m.eos_token_ids = {*m.eos_token_id};
  }
  // llama.cpp treats end-of-turn and end-of-generation tokens as stops too.
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (const gguf::Value* v = f.find(key)) {
      const int64_t id = v->as_int64();
      if (std::find(m.eos_token_ids.begin(), m.eos_token_ids.end(), id) == m.eos_token_ids.end())
        m.eos_token_ids.push_back(id);
    }
  }
  if (const gguf::Value* v = f.find("tokenizer.ggml.padding_token_id"))
    m.pad_token_id = v->as_int64();
}

std::vector<TensorSpec> llama_layout_tensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size, D = c.head_dim, q = c.num_heads * D, kv = c.num_kv_heads * D;
  const int64_t ff = c.intermediate_size;
  std::vector<TensorSpec> out;
  out.push_back({"model.embed_tokens.weight",
                 {c.vocab_size, h},
                 Role::kEmbed,
                 -1,
                 false,
                 "token_embd.weight"});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const LayerTensors add(out, "model.layers.", i);
    if (c.qkv == QkvLayout::kFused) {
      add("self_attn.qkv_proj.weight", {q + 2 * kv, h}, Role::kQkv, "attn_qkv.weight");
    } else {
      add("self_attn.q_proj.weight", {q, h}, Role::kQ, "attn_q.weight");
      if (c.attention_bias) add("self_attn.q_proj.bias", {q}, Role::kQBias, "attn_q.bias");
      add("self_attn.k_proj.weight", {kv, h}, Role::kK, "attn_k.weight");
      if (c.attention_bias) add("self_attn.k_proj.bias", {kv}, Role::kKBias, "attn_k.bias");
      add("self_attn.v_proj.weight", {kv, h}, Role::kV, "attn_v.weight");
      if (c.attention_bias) add("self_attn.v_proj.bias", {kv}, Role::kVBias, "attn_v.bias");
    }
    add("self_attn.o_proj.weight", {h, q}, Role::kO, "attn_output.weight");
    if (c.o_bias) add("self_attn.o_proj.bias", {h}, Role::kOBias, "attn_output.bias");
    if (c.qk_norm == QkNorm::kPerHead) {
      add("self_attn.q_norm.weight", {D}, Role::kQNorm, "attn_q_norm.weight");
      add("self_attn.k_norm.weight", {D}, Role::kKNorm, "attn_k_norm.weight");
    } else if (c.qk_norm == QkNorm::kWhole) {
      add("self_attn.q_norm.weight", {q}, Role::kQNorm, "attn_q_norm.weight");
      add("self_attn.k_norm.weight", {kv}, Role::kKNorm, "attn_k_norm.weight");
    }
    if (c.fused_gate_up) {
      add("mlp.gate_up_proj.weight", {2 * ff, h}, Role::kGateUp, "ffn_up.weight");
    } else {
      add("mlp.gate_proj.weight", {ff, h}, Role::kGate, "ffn_gate.weight");
      add("mlp.up_proj.weight", {ff, h}, Role::kUp, "ffn_up.weight");
    }
    add("mlp.down_proj.weight", {h, ff}, Role::kDown, "ffn_down.weight");
    // Norm names: Llama "post_attention_layernorm" is the norm *before* the MLP; Gemma 2/3 and
    // OLMo-2 use it for the norm after attention.
    if (c.pre_norms && c.post_norms) {  // Gemma 2/3
      add("input_layernorm.weight", {h}, Role::kAttnNorm, "attn_norm.weight");
      add("post_attention_layernorm.weight", {h}, Role::kPostAttnNorm,
          "post_attention_norm.weight");
      add("pre_feedforward_layernorm.weight", {h}, Role::kFfnNorm, "ffn_norm.weight");
      add("post_feedforward_layernorm.weight", {h}, Role::kPostFfnNorm, "post_ffw_norm.weight");
    } else if (c.post_norms) {  // OLMo-2
      add("post_attention_layernorm.weight", {h}, Role::kPostAttnNorm,
          "post_attention_norm.weight");
      add("post_feedforward_layernorm.weight", {h}, Role::kPostFfnNorm, "post_ffw_norm.weight");
    } else {
      add("input_layernorm.weight", {h}, Role::kAttnNorm, "attn_norm.weight");
      add("post_attention_layernorm.weight", {h}, Role::kFfnNorm, "ffn_norm.weight");
    }
  }
  out.push_back({"model.norm.weight", {h}, Role::kFinalNorm, -1, false, "output_norm.weight"});
  if (!c.tie_word_embeddings)
    out.push_back({"lm_head.weight", {c.vocab_size, h}, Role::kLmHead, -1, false, "output.weight"});
  return out;
}

}  // namespace family
}  // namespace npeff::model
