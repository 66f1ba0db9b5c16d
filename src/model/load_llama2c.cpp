// llama2.c checkpoints (run.c's format): 7 int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; a negative vocab_size means an unshared classifier), then
// float32 arrays in run.c's order. q/k rows are in Meta's interleaved rotary order: converted to
// HF's. RMSNorm epsilon 1e-5 and rope_theta 10000, as run.c hard-codes.
#include <sys/stat.h>

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include "npeff/core/error.h"
#include "npeff/model/loader.h"

namespace npeff::model {

LoadedModel load_llama2c_model(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  NPEFF_CHECK(in.good(), "cannot open model file ", path);
  const int64_t size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  int32_t h[7] = {0};
  NPEFF_CHECK(size >= 28 && in.read(reinterpret_cast<char*>(h), sizeof(h)), path,
              ": not a model file (too short for a llama2.c header; not GGUF, not a directory)");
  const bool shared = h[5] > 0;
  ModelConfig c;
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_layers = h[2];
  c.num_heads = h[3];
  c.num_kv_heads = h[4];
  c.vocab_size = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
  c.max_position_embeddings = h[6];
  for (int32_t v : h) {
    NPEFF_CHECK(v != 0 && v > -(1 << 24) && v < (1 << 24), path,
                ": implausible llama2.c header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, "
                "vocab_size, seq_len) = (",
                h[0], ", ", h[1], ", ", h[2], ", ", h[3], ", ", h[4], ", ", h[5], ", ", h[6], ")");
  }
  NPEFF_CHECK(c.num_heads > 0 && c.hidden_size % c.num_heads == 0, path, ": dim ", c.hidden_size,
              " is not a multiple of n_heads ", c.num_heads);
  c.head_dim = c.hidden_size / c.num_heads;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = shared;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  c.validate(path);

  const int64_t dim = c.hidden_size, hid = c.intermediate_size, L = c.num_layers;
  const int64_t kv = c.num_kv_heads * c.head_dim, V = c.vocab_size;
  const int64_t floats = V * dim + L * dim + L * dim * dim + 2 * L * dim * kv + L * dim * dim +
                         L * dim + 3 * L * dim * hid + dim +
                         c.max_position_embeddings * c.head_dim + (shared ? 0 : V * dim);
  NPEFF_CHECK(size == 28 + 4 * floats, path, ": file has ", size, " bytes; the header (",
              c.summary(), ") implies ", 28 + 4 * floats);
  at::Tensor all = at::empty({floats}, at::kFloat);
  in.read(reinterpret_cast<char*>(all.data_ptr<float>()), 4 * floats);
  NPEFF_CHECK(in.good(), path, ": read failed");

  int64_t offset = 0;
  const auto take = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    at::Tensor t = all.narrow(0, offset, n).view(shape);
    offset += n;
    return t;
  };
  const at::Tensor embed = take({V, dim}), rms_att = take({L, dim}), wq = take({L, dim, dim}),
                   wk = take({L, kv, dim}), wv = take({L, kv, dim}), wo = take({L, dim, dim}),
                   rms_ffn = take({L, dim}), w1 = take({L, hid, dim}), w2 = take({L, dim, hid}),
                   w3 = take({L, hid, dim}), rms_final = take({dim});
  take({c.max_position_embeddings * c.head_dim});  // freq_cis_real and _imag: recomputed
  std::vector<Parameter> p;
  p.push_back({"model.embed_tokens.weight", embed.clone()});
  for (int64_t i = 0; i < L; ++i) {
    const std::string pre = "model.layers." + std::to_string(i) + ".";
    p.push_back({pre + "self_attn.q_proj.weight", unpermute_rotary_rows(wq[i], c.num_heads)});
    p.push_back({pre + "self_attn.k_proj.weight", unpermute_rotary_rows(wk[i], c.num_kv_heads)});
    p.push_back({pre + "self_attn.v_proj.weight", wv[i].clone()});
    p.push_back({pre + "self_attn.o_proj.weight", wo[i].clone()});
    p.push_back({pre + "mlp.gate_proj.weight", w1[i].clone()});
    p.push_back({pre + "mlp.up_proj.weight", w3[i].clone()});
    p.push_back({pre + "mlp.down_proj.weight", w2[i].clone()});
    p.push_back({pre + "input_layernorm.weight", rms_att[i].clone()});
    p.push_back({pre + "post_attention_layernorm.weight", rms_ffn[i].clone()});
  }
  p.push_back({"model.norm.weight", rms_final.clone()});
  if (!shared) p.push_back({"lm_head.weight", take({V, dim}).clone()});

  LoadedModel loaded;
  loaded.model = std::make_unique<LlamaModel>(c, std::move(p), path);
  loaded.format = "llama2c";
  loaded.path = path;
  loaded.details = "float32";
  std::string tok = options.tokenizer_path;
  if (tok.empty()) {
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    for (const std::string& name :
         {std::string("tokenizer.bin"), "tok" + std::to_string(V) + ".bin"}) {
      struct stat st {};
      if (::stat((dir + "/" + name).c_str(), &st) == 0) {
        tok = dir + "/" + name;
        break;
      }
    }
  }
  if (!tok.empty()) {
    loaded.tokenizer = std::make_unique<tokenizer::Tokenizer>(
        options.tokenizer_path.empty() ? tokenizer::load_llama2c_tokenizer(tok, V)
                                       : tokenizer::load_tokenizer(tok));
  }
  return loaded;
}

}  // namespace npeff::model
