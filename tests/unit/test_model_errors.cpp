// Malformed checkpoints: each is refused with npeff::Error naming the problem (exit code 2 in the
// CLI), never a crash. Run under AddressSanitizer by tools/run-tests.sh.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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
  write_config("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\"");
  expect_error([&] { load_model(dir); }, {"model_type 'gpt2' is not supported"});
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

}  // namespace
}  // namespace npeff::model
