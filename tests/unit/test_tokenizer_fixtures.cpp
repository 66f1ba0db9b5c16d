// npeff's tokenizers against the outside references, through the committed fixtures written by
// tools/fixtures/make_tokenizer_fixtures.py (HF `tokenizers`, `sentencepiece`): identical ids and
// decoded text on an edge-case list and on every text of ../shared/data (compared by per-chunk
// FNV-1a hashes; see tests/fixtures/README.md). Exact equality: tokenization has no tolerance.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "npeff/tokenizer/tokenizer.h"
#include "unit/shared_texts.h"
#include "unit/test_util.h"

namespace npeff::tokenizer {
namespace {

using npeff::testing::source_dir;

using json = nlohmann::json;

std::string fixtures() {
  return source_dir() + "/tests/fixtures/tokenizers/";
}
std::string data_dir() {
  const char* s = std::getenv("NPEFF_SHARED_DIR");
  return (s ? std::string(s) : source_dir() + "/../shared") + "/data";
}

// Decompresses a .gz fixture next to the test's temporary files.
std::string gunzip(const std::string& gz, const std::string& out) {
  gzFile in = gzopen(gz.c_str(), "rb");
  if (in == nullptr) throw std::runtime_error("cannot open " + gz);
  std::ofstream o(out, std::ios::binary);
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(in, buf, sizeof(buf))) > 0) o.write(buf, n);
  gzclose(in);
  return out;
}

struct Case {
  std::string name;      // test name
  std::string file;      // relative to the fixtures dir
  std::string expected;  // fixture folder with expected.json
  bool llama2c = false;  // decode needs a leading BOS to drop the dummy-prefix space
  bool compare_pieces = true;
  // Edge-case texts where the format itself differs from the reference (documented per case).
  std::vector<std::string> divergent = {};
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.name;
}

class TokenizerFixture : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    std::ifstream in(fixtures() + c.expected + "/expected.json");
    ASSERT_TRUE(in.good()) << "missing fixture " << c.expected;
    expected_ = json::parse(in);
    std::string path = fixtures() + c.file;
    if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
      const auto tmp = std::filesystem::temp_directory_path() /
                       ("npeff_fixture_" + std::to_string(::getpid()) + "_" + c.name);
      path = gunzip(path, tmp.string());
      cleanup_ = path;
    }
    tok_ = std::make_unique<Tokenizer>(load_tokenizer(path));
    encode_.add_special_tokens = expected_["encode"]["add_special_tokens"].get<bool>();
    encode_.parse_special =
        !c.llama2c && expected_["reference"].get<std::string>().rfind("sentencepiece", 0) != 0;
  }
  void TearDown() override {
    if (!cleanup_.empty()) std::filesystem::remove(cleanup_);
  }
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const {
    DecodeOptions d;
    d.skip_special_tokens = skip_special;
    if (!GetParam().llama2c) return tok_->decode(ids, d);
    std::vector<int32_t> with_bos = {*tok_->bos_id()};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    d.skip_special_tokens = true;
    return tok_->decode(with_bos, d);
  }

  json expected_;
  std::unique_ptr<Tokenizer> tok_;
  EncodeOptions encode_;
  std::string cleanup_;
};

TEST_P(TokenizerFixture, EdgeCasesMatchTheReference) {
  const bool skip = expected_["decode"]["skip_special_tokens"].get<bool>();
  int checked = 0;
  for (const json& e : expected_["edge_cases"]) {
    const std::string text = e["text"].get<std::string>();
    const auto& divergent = GetParam().divergent;
    if (std::find(divergent.begin(), divergent.end(), text) != divergent.end()) continue;
    const std::vector<int32_t> want = e["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok_->encode(text, encode_);
    EXPECT_EQ(got, want) << "text: " << json(text).dump();
    if (got != want) continue;
    if (GetParam().compare_pieces && e.contains("pieces")) {
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(tok_->piece(got[i]), e["pieces"][i].get<std::string>()) << json(text).dump();
      }
    }
    EXPECT_EQ(decode(got, skip), e["decoded"].get<std::string>()) << json(text).dump();
    if (!GetParam().llama2c && e.contains("decoded_with_special")) {
      EXPECT_EQ(decode(got, false), e["decoded_with_special"].get<std::string>())
          << json(text).dump();
    }
    ++checked;
  }
  EXPECT_GT(checked, 30);
}

TEST_P(TokenizerFixture, EveryTextOfTheSharedDataMatchesTheReference) {
  const auto datasets = npeff::testing::shared_texts(data_dir());
  if (datasets.empty()) GTEST_SKIP() << "../shared/data absent (" << data_dir() << ")";
  const bool skip = expected_["decode"]["skip_special_tokens"].get<bool>();
  for (const auto& [name, texts] : datasets) {
    SCOPED_TRACE(name);
    const json& want = expected_["datasets"][name];
    ASSERT_EQ(static_cast<int64_t>(texts.size()), want["texts"].get<int64_t>())
        << "the text enumeration differs from the fixture script's";
    const size_t chunk = want["chunk"].get<size_t>();
    int64_t tokens = 0;
    int mismatches = 0;
    for (size_t c = 0; c * chunk < texts.size(); ++c) {
      npeff::testing::Fnv1a64 ids_hash, text_hash;
      const uint32_t sep = 0xFFFFFFFFu;
      const unsigned char text_sep = 0xFF;
      for (size_t i = c * chunk; i < std::min(texts.size(), (c + 1) * chunk); ++i) {
        const std::vector<int32_t> ids = tok_->encode(texts[i], encode_);
        tokens += static_cast<int64_t>(ids.size());
        for (int32_t id : ids) {
          const uint32_t u = static_cast<uint32_t>(id);  // little-endian host (x86-64, aarch64)
          ids_hash.add(&u, 4);
        }
        ids_hash.add(&sep, 4);
        const std::string d = decode(ids, skip);
        text_hash.add(d.data(), d.size());
        text_hash.add(&text_sep, 1);
      }
      const bool ids_ok = ids_hash.hex() == want["ids_fnv1a64"][c].get<std::string>();
      const bool text_ok = text_hash.hex() == want["decoded_fnv1a64"][c].get<std::string>();
      if ((!ids_ok || !text_ok) && ++mismatches <= 3) {
        ADD_FAILURE() << name << " chunk " << c << " (texts " << c * chunk << ".."
                      << std::min(texts.size(), (c + 1) * chunk) - 1
                      << "): " << (ids_ok ? "" : "ids differ ")
                      << (text_ok ? "" : "decoded text differs ")
                      << "(compare with the reference on these texts: tests/fixtures/README.md)";
      }
    }
    EXPECT_EQ(mismatches, 0);
    EXPECT_EQ(tokens, want["tokens"].get<int64_t>());
    for (const json& s : want["samples"]) {
      EXPECT_EQ(tok_->encode(s["text"].get<std::string>(), encode_),
                s["ids"].get<std::vector<int32_t>>())
          << json(s["text"]).dump();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    References, TokenizerFixture,
    ::testing::Values(Case{"bytelevel_gpt2", "bytelevel_gpt2/tokenizer.json", "bytelevel_gpt2"},
                      Case{"bytelevel_llama3", "bytelevel_llama3/tokenizer.json",
                           "bytelevel_llama3"},
                      Case{"spbpe_llama2", "spbpe_llama2/tokenizer.json", "spbpe_llama2"},
                      Case{"spbpe_metaspace", "spbpe_metaspace/tokenizer.json", "spbpe_metaspace"},
                      Case{"smollm2_gguf", "smollm2_gguf/vocab.gguf.gz", "smollm2_gguf"},
                      Case{"spm_gguf", "spm/vocab.gguf", "spm", false, true},
                      // llama2.c stores "▁" as " " in tokenizer.bin, so a literal U+2581 in the
                      // text is an unknown character there (bytes), while sentencepiece reads it
                      // as its whitespace symbol. run.c agrees with npeff (test_tokenizer).
                      Case{"spm_llama2c",
                           "spm/tokenizer.bin",
                           "spm",
                           true,
                           false,
                           {"\xE2\x96\x81lower one eighth block"}}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace npeff::tokenizer
