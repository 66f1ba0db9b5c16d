// Malformed checkpoints: each is refused with npeff::Error naming the problem (exit code 2 in the
// CLI), never a crash. Run under AddressSanitizer by tools/run-tests.sh.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "npeff/io/gguf.h"
#include "npeff/model/loader.h"
#include "unit/gguf_writer.h"
#include "unit/model_fixtures.h"
#include "unit/safetensors_writer.h"
#include "unit/test_util.h"

namespace npeff::model {
namespace {

using namespace npeff::testing;
namespace fs = std::filesystem;

class BrokenCheckpoint : public TempDirTest {
 protected:
  // A copy of tiny/llama_tied whose model.safetensors is rewritten by `edit`.
  std::string hf_copy() {
    const std::string dir = path("model");
    fs::create_directories(dir);
    fs::copy_file(tiny_model("llama_tied") + "/config.json", dir + "/config.json",
                  fs::copy_options::overwrite_existing);
    return dir;
  }
  // All tensors of the fixture model, as a writer the test can modify before writing.
  SafetensorsWriter writer_with(const std::string& skip = "", const std::string& dtype = "F32",
                                const std::string& reshape = "") {
    const LoadedModel m = load_model(tiny_model("llama_tied"));
    SafetensorsWriter w;
    for (const Parameter& p : m.model->parameters()) {
      if (p.name == skip) continue;
      const at::Tensor t = p.tensor.contiguous();
      std::vector<float> values(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
      std::vector<int64_t> shape = t.sizes().vec();
      if (p.name == reshape) shape = {shape[0] * shape[1]};
      if (dtype == "I32" && p.name == "model.norm.weight") {
        std::vector<uint8_t> raw(values.size() * 4);
        w.add_raw(p.name, "I32", shape, raw);
      } else {
        w.add(p.name, "F32", shape, values);
      }
    }
    return w;
  }
  void expect_hf_error(SafetensorsWriter w, const std::vector<std::string>& parts) {
    const std::string dir = hf_copy();
    w.write(dir + "/model.safetensors");
    expect_error([&] { load_model(dir); }, parts);
  }
  void truncate_copy(const std::string& from, const std::string& to, uint64_t bytes) {
    std::ifstream in(from, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(to, std::ios::binary) << data.substr(0, bytes);
  }
};

TEST_F(BrokenCheckpoint, ValidRewriteLoads) {
  const std::string dir = hf_copy();
  writer_with().write(dir + "/model.safetensors");
  EXPECT_NO_THROW(load_model(dir));
}

TEST_F(BrokenCheckpoint, SafetensorsProblemsAreRefused) {
  expect_hf_error(writer_with("model.layers.1.mlp.up_proj.weight"),
                  {"missing tensor model.layers.1.mlp.up_proj.weight"});
  expect_hf_error(writer_with("", "I32"), {"model.norm.weight", "I32"});
  expect_hf_error(writer_with("", "F32", "model.layers.0.mlp.down_proj.weight"),
                  {"model.layers.0.mlp.down_proj.weight", "config.json implies"});
  expect_hf_error(writer_with().add("extra.weight", "F32", {1}, {1.f}),
                  {"unexpected tensor extra.weight"});
  SafetensorsWriter past = writer_with();
  past.add_raw("model.bogus", "F32", {1}, {0, 0, 0, 0})
      .entry_json(R"({"dtype":"F32","shape":[1],"data_offsets":[999999999,1000000003]})");
  expect_hf_error(past, {"model.bogus"});
  const std::string dir = hf_copy();
  writer_with().write(path("full.safetensors"));
  truncate_copy(path("full.safetensors"), dir + "/model.safetensors", 5000);
  expect_error([&] { load_model(dir); }, {"model.safetensors"});
  truncate_copy(path("full.safetensors"), dir + "/model.safetensors", 4);
  expect_error([&] { load_model(dir); }, {"model.safetensors"});
}

TEST_F(BrokenCheckpoint, ConfigProblemsAreRefused) {
  const std::string dir = hf_copy();
  writer_with().write(dir + "/model.safetensors");
  const auto write_config = [&](const std::string& from, const std::string& to) {
    std::ifstream in(tiny_model("llama_tied") + "/config.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    std::ofstream(dir + "/config.json") << text.replace(at, from.size(), to);
  };
  write_config("\"hidden_size\": 32", "\"hidden_size\": 48");
  expect_error([&] { load_model(dir); }, {"has", "shape", "config.json implies"});
  write_config("\"model_type\": \"llama\"", "\"model_type\": \"bloom\"");
  expect_error([&] { load_model(dir); }, {"model_type 'bloom' is not supported (supported: llama"});
  write_config("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3");
  expect_error([&] { load_model(dir); }, {"multiple of num_key_value_heads"});
  write_config("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"");
  expect_error([&] { load_model(dir); }, {"hidden_act 'gelu'"});
  std::ofstream(dir + "/config.json") << "{\"model_type\": ";
  expect_error([&] { load_model(dir); }, {"not a JSON object"});
  fs::remove(dir + "/config.json");
  expect_error([&] { load_model(dir); }, {"no config.json"});
  expect_error([&] { load_model(path("nope")); }, {"does not exist"});
}

TEST_F(BrokenCheckpoint, GgufProblemsAreRefused) {
  GgufWriter w;
  w.add_string("general.architecture", "llama").add_u32("llama.embedding_length", 8);
  w.write(path("a.gguf"));
  expect_error([&] { load_model(path("a.gguf")); }, {"llama.block_count"});
  GgufWriter arch;
  arch.add_string("general.architecture", "mamba");
  arch.write(path("b.gguf"));
  expect_error([&] { load_model(path("b.gguf")); }, {"general.architecture 'mamba'"});
  truncate_copy(path("a.gguf"), path("c.gguf"), 20);
  expect_error([&] { load_model(path("c.gguf")); }, {"c.gguf"});
}

TEST_F(BrokenCheckpoint, TruncatedRealGgufIsRefused) {
  const std::string real = smollm2_gguf();
  if (!path_exists(real))
    GTEST_SKIP() << "SmolLM2 GGUF not found (tools/get-smollm2.sh fetches it): " << real;
  // A truncated real file: header intact, tensor data cut.
  truncate_copy(real, path("cut.gguf"), 4 << 20);
  expect_error([&] { load_model(path("cut.gguf")); }, {"cut.gguf"});
}

TEST_F(BrokenCheckpoint, TruncatedRealLlama2cIsRefused) {
  const std::string model = shared_dir() + "/models/stories260K/stories260K.bin";
  if (!path_exists(model)) GTEST_SKIP() << "../shared absent: " << model;
  truncate_copy(model, path("cut.bin"), 100000);
  expect_error([&] { load_model(path("cut.bin")); }, {"cut.bin", "bytes", "implies"});
}

TEST_F(BrokenCheckpoint, Llama2cProblemsAreRefused) {
  std::ofstream(path("junk.bin")) << "not a model at all, clearly";
  expect_error([&] { load_model(path("junk.bin")); }, {"junk.bin"});
  std::ofstream(path("tiny.bin")) << "abc";
  expect_error([&] { load_model(path("tiny.bin")); }, {"too short"});
}

// A tiny llama2.c checkpoint written by the rules of karpathy/llama2.c export.py: legacy_export
// (version 0) or version1_export (version 1), from the same seeded weights.
class Llama2cFiles : public TempDirTest {
 protected:
  static constexpr int32_t kDim = 8, kHidden = 16, kLayers = 2, kHeads = 2, kKvHeads = 1,
                           kVocab = 10, kSeq = 4;
  std::map<std::string, std::vector<float>> w;  // llama2.c names
  void SetUp() override {
    TempDirTest::SetUp();
    const int64_t kv = kKvHeads * (kDim / kHeads);
    const std::vector<std::pair<std::string, int64_t>> sizes = {{"embed", kVocab * kDim},
                                                                {"rms_att", kLayers * kDim},
                                                                {"wq", kLayers * kDim * kDim},
                                                                {"wk", kLayers * kv * kDim},
                                                                {"wv", kLayers * kv * kDim},
                                                                {"wo", kLayers * kDim * kDim},
                                                                {"rms_ffn", kLayers * kDim},
                                                                {"w1", kLayers * kHidden * kDim},
                                                                {"w2", kLayers * kDim * kHidden},
                                                                {"w3", kLayers * kHidden * kDim},
                                                                {"rms_final", kDim},
                                                                {"freq", kSeq * (kDim / kHeads)},
                                                                {"wcls", kVocab * kDim}};
    float next = 0.f;
    for (const auto& [name, n] : sizes) {
      for (int64_t i = 0; i < n; ++i) w[name].push_back(next += 0.001f);  // all distinct
    }
  }
  static void put(std::ofstream& out, const std::vector<float>& v) {
    out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(4 * v.size()));
  }
  std::string write_v0(const std::string& name, bool shared) {
    std::ofstream out(path(name), std::ios::binary);
    const int32_t h[7] = {kDim, kHidden, kLayers, kHeads, kKvHeads, shared ? kVocab : -kVocab,
                          kSeq};
    out.write(reinterpret_cast<const char*>(h), sizeof h);
    for (const char* n : {"embed", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3",
                          "rms_final", "freq"}) {
      put(out, w[n]);
    }
    if (!shared) put(out, w["wcls"]);
    return path(name);
  }
  // version1_export: magic, version, 7 int32, shared byte, zeros to 256 bytes, then the norms
  // first. `version` != 1 writes only the header (a refused export).
  std::string write_ak42(const std::string& name, bool shared, int32_t version = 1) {
    std::ofstream out(path(name), std::ios::binary);
    std::string header(256, '\0');
    const uint32_t magic = 0x616b3432;
    const int32_t h[7] = {kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeq};
    std::memcpy(&header[0], &magic, 4);
    std::memcpy(&header[4], &version, 4);
    std::memcpy(&header[8], h, sizeof h);
    header[36] = shared ? 1 : 0;
    out << header;
    if (version != 1) return path(name);
    for (const char* n :
         {"rms_att", "rms_ffn", "rms_final", "embed", "wq", "wk", "wv", "wo", "w1", "w2", "w3"}) {
      put(out, w[n]);
    }
    if (!shared) put(out, w["wcls"]);
    return path(name);
  }
};

TEST_F(Llama2cFiles, Version1LoadsLikeVersion0) {
  for (const bool shared : {true, false}) {
    SCOPED_TRACE(shared ? "shared classifier" : "own classifier");
    const LoadedModel v0 = load_model(write_v0("v0.bin", shared));
    const LoadedModel v1 = load_model(write_ak42("v1.bin", shared));
    EXPECT_EQ(v1.format, "llama2c");
    EXPECT_TRUE(contains(v1.details, "version 1")) << v1.details;
    EXPECT_EQ(v1.model->config().tie_word_embeddings, shared);
    const auto& p0 = v0.model->parameters();
    const auto& p1 = v1.model->parameters();
    ASSERT_EQ(p0.size(), p1.size());
    for (size_t i = 0; i < p0.size(); ++i) {
      EXPECT_EQ(p0[i].name, p1[i].name);
      EXPECT_TRUE(p0[i].tensor.equal(p1[i].tensor)) << p0[i].name;
    }
  }
  // The file size must match the header, as for version 0.
  fs::resize_file(write_ak42("v1.bin", true), 1000);
  expect_error([&] { load_model(path("v1.bin")); }, {"v1.bin", "llama2.c version 1", "implies"});
}

TEST_F(Llama2cFiles, OtherAk42VersionsAreRefused) {
  expect_error([&] { load_model(write_ak42("q80.bin", true, 2)); },
               {"q80.bin: llama2.c export version 2 (magic 'ak42', int8 Q8_0", "not supported",
                "--version 1"});
  expect_error([&] { load_model(write_ak42("v7.bin", true, 7)); },
               {"v7.bin: llama2.c export version 7 (magic 'ak42') is not supported"});
  expect_error([&] { load_model_tokenizer(path("q80.bin")); }, {"version 2"});
}

TEST_F(BrokenCheckpoint, GitLfsPointerSaysSo) {
  const std::string pointer =
      "version https://git-lfs.github.com/spec/v1\n"
      "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
      "size 538947840\n";
  const std::vector<std::string> parts = {"this is a Git LFS pointer (",
                                          "standing for a file of 538947840 bytes)",
                                          "not the file itself", "git lfs pull"};
  const std::string dir = hf_copy();
  std::ofstream(dir + "/model.safetensors") << pointer;
  expect_error([&] { load_model(dir); }, parts);
  expect_error([&] { load_model(dir + "/model.safetensors"); }, parts);
  for (const char* name : {"model.gguf", "model.bin"}) {
    std::ofstream(path(name)) << pointer;
    expect_error([&] { load_model(path(name)); }, parts);
    expect_error([&] { load_model_tokenizer(path(name)); }, parts);
  }
  expect_error([&] { gguf::File::open(path("model.gguf")); }, parts);
  // Text that only mentions LFS is not a pointer.
  std::ofstream(path("notes.bin")) << "see version https://git-lfs.github.com/spec/v1 for details";
  const std::string msg = [&] {
    try {
      load_model(path("notes.bin"));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_FALSE(contains(msg, "Git LFS")) << msg;
}

}  // namespace
}  // namespace npeff::model
