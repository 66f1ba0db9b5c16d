// npeff's tokenizers against the outside references, through the committed fixtures written by
// tools/fixtures/make_tokenizer_fixtures.py (HF `tokenizers`, `sentencepiece`): identical ids and
// decoded text on an edge-case list and on every text of ../shared/data (compared by per-chunk
// FNV-1a hashes; see tests/fixtures/README.md). Exact equality: tokenization has no tolerance.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "npeff/tokenizer/tokenizer.h"
#include "tokenizer/pipeline.h"
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

// Ids and decoded text of every text, compared with the fixture's per-chunk FNV-1a hashes.
void expect_dataset_hashes(const std::string& name, const std::vector<std::string>& texts,
                           const json& want,
                           const std::function<std::vector<int32_t>(const std::string&)>& encode,
                           const std::function<std::string(const std::vector<int32_t>&)>& decode) {
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
      const std::vector<int32_t> ids = encode(texts[i]);
      tokens += static_cast<int64_t>(ids.size());
      for (int32_t id : ids) {
        const uint32_t u = static_cast<uint32_t>(id);  // little-endian host (x86-64, aarch64)
        ids_hash.add(&u, 4);
      }
      ids_hash.add(&sep, 4);
      const std::string d = decode(ids);
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
    expect_dataset_hashes(
        name, texts, want, [&](const std::string& t) { return tok_->encode(t, encode_); },
        [&](const std::vector<int32_t>& ids) { return decode(ids, skip); });
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
                      Case{"qwen2_nfc", "qwen2_nfc/tokenizer.json", "qwen2_nfc"},
                      Case{"gemma_spbpe", "gemma_spbpe/tokenizer.json", "gemma_spbpe"},
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

// ---- One component at a time: components/<variant>.json plugs a normalizer and/or a
// pre-tokenizer into components/base.json (make_component_fixtures.py builds the same JSON for HF).

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("missing fixture " + path);
  return json::parse(in);
}

class ComponentFixture : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string dir = fixtures() + "components/";
    expected_ = read_json(dir + GetParam() + ".json");
    texts_ = read_json(dir + "texts.json")["texts"].get<std::vector<std::string>>();
    json j = read_json(dir + "base.json");
    j["normalizer"] = expected_["normalizer"];
    j["pre_tokenizer"] = expected_["pre_tokenizer"];
    tok_ = std::make_unique<Tokenizer>(
        load_hf_tokenizer_json_text(j.dump(), std::string("components/") + GetParam()));
    encode_.add_special_tokens = false;
  }
  json expected_;
  std::vector<std::string> texts_;
  std::unique_ptr<Tokenizer> tok_;
  EncodeOptions encode_;
};

TEST_P(ComponentFixture, TextsMatchTheReference) {
  ASSERT_EQ(expected_["ids"].size(), texts_.size());
  for (size_t i = 0; i < texts_.size(); ++i) {
    const std::vector<int32_t> got = tok_->encode(texts_[i], encode_);
    EXPECT_EQ(got, expected_["ids"][i].get<std::vector<int32_t>>()) << json(texts_[i]).dump();
    EXPECT_EQ(tok_->decode(got, DecodeOptions{true}), expected_["decoded"][i].get<std::string>())
        << json(texts_[i]).dump();
  }
}

// The component alone (ids can miss a split between characters that no merge joins): the
// normalized text of a normalizer variant, the pieces of a pre-tokenizer variant.
TEST_P(ComponentFixture, TheComponentAloneMatchesTheReference) {
  const Tokenizer::Impl& impl = tok_->impl();
  for (size_t i = 0; i < texts_.size(); ++i) {
    if (expected_.contains("normalized")) {
      std::string s = texts_[i];
      for (const auto& n : impl.normalizers) n->normalize(s);
      EXPECT_EQ(s, expected_["normalized"][i].get<std::string>()) << json(texts_[i]).dump();
    } else {
      std::vector<Piece> pieces;  // an empty text has no split to pre-tokenize (as in HF)
      if (!texts_[i].empty()) pieces.push_back(Piece{texts_[i], true});
      for (const auto& p : impl.pre_tokenizers) p->split(pieces);
      std::vector<std::string> got;
      for (const Piece& p : pieces) got.push_back(p.text);
      EXPECT_EQ(got, expected_["pre_tokenized"][i].get<std::vector<std::string>>())
          << json(texts_[i]).dump();
    }
  }
}

TEST_P(ComponentFixture, EveryTextOfTheSharedDataMatchesTheReference) {
  const auto datasets = npeff::testing::shared_texts(data_dir());
  if (datasets.empty()) GTEST_SKIP() << "../shared/data absent (" << data_dir() << ")";
  for (const auto& [name, texts] : datasets) {
    if (!expected_["datasets"].contains(name)) continue;  // the variants leave SST-2 train out
    SCOPED_TRACE(name);
    expect_dataset_hashes(
        name, texts, expected_["datasets"][name],
        [&](const std::string& t) { return tok_->encode(t, encode_); },
        [&](const std::vector<int32_t>& ids) { return tok_->decode(ids, DecodeOptions{true}); });
  }
}

// Every variant of make_component_fixtures.py's VARIANTS.
INSTANTIATE_TEST_SUITE_P(
    Components, ComponentFixture,
    ::testing::Values(
        "nfc", "nfd", "nfkc", "nfkd", "lowercase", "strip", "strip_right", "strip_accents",
        "nfd_strip_accents", "prepend", "replace_string", "replace_regex", "sequence_normalizer",
        "bert_normalizer", "bert_normalizer_cased", "bert_normalizer_accents_only", "nmt",
        "byte_level_normalizer", "whitespace", "whitespace_split", "punctuation",
        "punctuation_contiguous", "punctuation_merged_with_next", "char_delimiter_split",
        "bert_pre_tokenizer", "bert_full", "digits_individual", "digits_contiguous", "split_string",
        "split_regex_removed", "split_regex_isolated", "split_regex_merged_with_previous",
        "split_regex_merged_with_next", "split_regex_contiguous", "split_regex_invert",
        "byte_level_pre_tokenizer", "metaspace_always", "metaspace_never_nosplit", "fixed_length",
        "sequence_pre_tokenizer"),
    [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

}  // namespace
}  // namespace npeff::tokenizer
