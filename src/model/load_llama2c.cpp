// llama2.c checkpoints (karpathy/llama2.c export.py). Version 0 (legacy_export, run.c's
// format): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
// negative vocab_size means an unshared classifier), then float32 arrays in run.c's order, with
// the rotary tables. Version 1 (version1_export): a 256-byte header (uint32 magic 0x616b3432
// "ak42", int32 version 1, the same 7 int32 with vocab_size positive, a shared-classifier byte,
// zeros), then float32 arrays: the norms first, no rotary tables (order below). Version 2 (int8
// Q8_0) is refused. q/k rows are in Meta's interleaved rotary order in both: converted to HF's.
// RMSNorm epsilon 1e-5 and rope_theta 10000, as run.c hard-codes.
#include <sys/stat.h>

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include "model/llama2c_header.h"
#include "npeff/core/error.h"
#include "npeff/io/mapped_file.h"
#include "npeff/model/loader.h"

namespace npeff::model {

namespace {
constexpr uint32_t kMagic = 0x616b3432;  // "ak42" as export.py packs it ('I', little-endian)
constexpr int64_t kHeaderBytesV1 = 256;
}  // namespace

Llama2cHeader read_llama2c_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  NPEFF_CHECK(in.good(), "cannot open model file ", path);
  Llama2cHeader h;
  h.file_bytes = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  char head[1024] = {0};  // a header, or all of a Git LFS pointer (< 1024 bytes)
  in.read(head, sizeof head);
  const int64_t got = static_cast<int64_t>(in.gcount());
  io::check_not_lfs_pointer(path, reinterpret_cast<const uint8_t*>(head), got);
  uint32_t magic = 0;
  if (got >= 4) std::memcpy(&magic, head, 4);
  if (got >= 8 && magic == kMagic) {
    int32_t version = 0;
    std::memcpy(&version, head + 4, 4);
    NPEFF_CHECK(version != 2, path,
                ": llama2.c export version 2 (magic 'ak42', int8 Q8_0 weights, export.py "
                "--version 2) is not supported: export float32 with export.py --version 1 or 0");
    NPEFF_CHECK(version == 1, path, ": llama2.c export version ", version,
                " (magic 'ak42') is not supported: npeff reads version 0 (legacy, no magic) and "
                "version 1 (float32)");
    NPEFF_CHECK(got >= kHeaderBytesV1, path, ": llama2.c version 1 header cut short: ", got, " of ",
                kHeaderBytesV1, " bytes");
    h.version = 1;
    h.header_bytes = kHeaderBytesV1;
    std::memcpy(h.fields, head + 8, sizeof h.fields);
    h.shared_classifier = head[8 + sizeof h.fields] != 0;
  } else {
    NPEFF_CHECK(got >= 28, path,
                ": not a model file (too short for a llama2.c header; not GGUF, not a directory)");
    h.header_bytes = 28;
    std::memcpy(h.fields, head, sizeof h.fields);
    h.shared_classifier = h.fields[5] > 0;
  }
  const int32_t* f = h.fields;
  for (int32_t v : h.fields) {
    NPEFF_CHECK(v != 0 && v > -(1 << 24) && v < (1 << 24), path, ": implausible llama2.c ",
                h.version == 0 ? "(version 0) header" : "version 1 header",
                " (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) = (", f[0],
                ", ", f[1], ", ", f[2], ", ", f[3], ", ", f[4], ", ", f[5], ", ", f[6], ")");
  }
  // version1_export writes vocab_size positive; take |vocab_size| in both versions.
  h.vocab_size = f[5] < 0 ? -static_cast<int64_t>(f[5]) : f[5];
  return h;
}

LoadedModel load_llama2c_model(const std::string& path, const LoadOptions& options) {
  const Llama2cHeader header = read_llama2c_header(path);
  const int32_t* h = header.fields;
  const int64_t size = header.file_bytes;
  const bool shared = header.shared_classifier;
  ModelConfig c;
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_layers = h[2];
  c.num_heads = h[3];
  c.num_kv_heads = h[4];
  c.vocab_size = header.vocab_size;
  c.max_position_embeddings = h[6];
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
  // Version 0 stores the rotary tables (freq_cis_real and _imag, recomputed here); 1 does not.
  const int64_t rope = header.version == 0 ? c.max_position_embeddings * c.head_dim : 0;
  const int64_t floats = V * dim + L * dim + L * dim * dim + 2 * L * dim * kv + L * dim * dim +
                         L * dim + 3 * L * dim * hid + dim + rope + (shared ? 0 : V * dim);
  const int64_t expected = header.header_bytes + 4 * floats;
  NPEFF_CHECK(size == expected, path, ": file has ", size, " bytes; the llama2.c version ",
              header.version, " header (", c.summary(), ") implies ", expected);
  at::Tensor all = at::empty({floats}, at::kFloat);
  std::ifstream in(path, std::ios::binary);
  in.seekg(header.header_bytes);
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
  at::Tensor embed, rms_att, rms_ffn, rms_final;
  if (header.version == 0) {
    embed = take({V, dim});
    rms_att = take({L, dim});
  } else {  // version1_export: attention norms, ffn norms, final norm, then as version 0
    rms_att = take({L, dim});
    rms_ffn = take({L, dim});
    rms_final = take({dim});
    embed = take({V, dim});
  }
  const at::Tensor wq = take({L, dim, dim}), wk = take({L, kv, dim}), wv = take({L, kv, dim}),
                   wo = take({L, dim, dim});
  if (header.version == 0) rms_ffn = take({L, dim});
  const at::Tensor w1 = take({L, hid, dim}), w2 = take({L, dim, hid}), w3 = take({L, hid, dim});
  if (header.version == 0) {
    rms_final = take({dim});
    take({rope});  // freq_cis_real and _imag: recomputed
  }
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
  loaded.model = std::make_unique<CausalLM>(c, std::move(p), path);
  loaded.format = "llama2c";
  loaded.path = path;
  loaded.details = header.version == 0 ? "float32" : "float32, llama2.c export version 1";
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
