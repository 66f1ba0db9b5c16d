// Malformed tokenizer files: every one is refused with npeff::Error naming the problem (the CLI
// turns that into exit code 2), never a crash. The fuzzer (tests/fuzz) covers the rest.
#include <gtest/gtest.h>

#include <fstream>

#include "npeff/tokenizer/tokenizer.h"
#include "unit/gguf_writer.h"
#include "unit/test_util.h"

namespace npeff::tokenizer {
namespace {

using npeff::gguf::ValueType;
using npeff::testing::expect_error;
using npeff::testing::GgufWriter;

const char* const kValid = R"({
  "added_tokens": [{"id": 0, "content": "<s>", "special": true, "normalized": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "post_processor": null,
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}
})";

std::string with(const std::string& from, const std::string& to) {
  std::string s = kValid;
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

void expect_json_error(const std::string& text, const std::vector<std::string>& parts) {
  SCOPED_TRACE(text);
  expect_error([&] { load_hf_tokenizer_json_text(text, "t.json"); }, parts);
}

TEST(TokenizerJson, ValidBaseLoads) {
  const Tokenizer tok = load_hf_tokenizer_json_text(kValid, "t.json");
  EXPECT_EQ(tok.encode("ab<s>ba"), (std::vector<int32_t>{3, 0, 2, 1}));
  EXPECT_EQ(tok.decode({3, 0, 2, 1}), "ab<s>ba");
  EXPECT_EQ(tok.decode({3, 0, 2, 1}, DecodeOptions{true}), "abba");
}

TEST(TokenizerJson, MalformedFilesAreRefusedWithAReason) {
  expect_json_error("", {"t.json", "not valid JSON"});
  expect_json_error("{\"model\": ", {"not valid JSON"});
  expect_json_error("[1, 2]", {"must be a JSON object", "array"});
  expect_json_error("{}", {"model is missing"});
  expect_json_error(with("\"merges\": [\"a b\"]", "\"nomerges\": []"), {"model.merges is missing"});
  expect_json_error(with("\"a b\"", "\"a c\""), {"merge 0", "not in the vocabulary", "'c'"});
  expect_json_error(with("\"a b\"", "\"b a\""), {"makes 'ba'", "not in the vocabulary"});
  expect_json_error(with("\"a b\"", "\"ab\""), {"two tokens separated by one space"});
  expect_json_error(with("\"a b\"", "[\"a\"]"), {"must have two tokens"});
  expect_json_error(with("\"a b\"", "42"), {"merges[0] must be an array"});
  // An unsupported component names its place in the file, its family and type, and every type
  // npeff supports in that family.
  expect_json_error(
      with("\"type\": \"ByteLevel\", \"add", "\"type\": \"Magic\", \"add"),
      {"t.json: pre_tokenizer: pre_tokenizer type 'Magic' is not supported",
       "supported pre_tokenizer types: Sequence, ByteLevel", "Whitespace", "Metaspace"});
  expect_json_error(
      with("\"normalizer\": null",
           "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, "
           "{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"\"}]}"),
      {"t.json: normalizer.normalizers[1]: normalizer type 'Precompiled' is not supported",
       "supported normalizer types: Sequence", "NFC", "NFKC", "BertNormalizer"});
  expect_json_error(
      with("\"decoder\": {\"type\": \"ByteLevel\"}", "\"decoder\": {\"type\": \"WordPiece\"}"),
      {"decoder", "'WordPiece' is not supported"});
  expect_json_error(with("\"post_processor\": null", "\"post_processor\": {\"type\": \"Magic\"}"),
                    {"post_processor", "'Magic'"});
  expect_json_error(with("\"type\": \"BPE\"", "\"type\": \"WordPiece\""),
                    {"model type 'WordPiece' is not supported"});
  expect_json_error(with("\"b\": 2", "\"b\": -2"), {"token id -2", "out of range"});
  expect_json_error(with("\"b\": 2", "\"b\": 1"), {"token id 1 is given to both"});
  expect_json_error(with("\"b\": 2", "\"b\": \"two\""), {"must be an integer"});
  expect_json_error(with("\"a\": 1,", "\"\xC3\x28\": 1,"), {"not valid JSON"});
  expect_json_error(with("\"type\": \"BPE\"", "\"type\": \"BPE\", \"dropout\": 0.1"), {"dropout"});
  expect_json_error(with("\"type\": \"BPE\"", "\"type\": \"BPE\", \"unk_token\": \"<unk>\""),
                    {"unk_token '<unk>' is not in the vocabulary"});
  expect_json_error(with("\"special\": true", "\"special\": true, \"single_word\": true"),
                    {"single_word"});
  expect_json_error(with("\"use_regex\": true", "\"use_regex\": 1"), {"must be true or false"});
  expect_json_error(with("\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                         "false, \"use_regex\": true}",
                         "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": "
                         "\"(\"}, \"behavior\": \"Isolated\"}"),
                    {"regular expression does not compile"});
  expect_json_error(with("\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                         "false, \"use_regex\": true}",
                         "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \" "
                         "\"}, \"behavior\": \"Sideways\"}"),
                    {"unknown split behavior 'Sideways'"});
  const std::string byte_level =
      R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";
  expect_json_error(
      with(byte_level, R"("pre_tokenizer": {"type": "CharDelimiterSplit", "delimiter": "ab"})"),
      {"pre_tokenizer.delimiter must be a single character", "'ab'"});
  expect_json_error(with(byte_level, R"("pre_tokenizer": {"type": "FixedLength", "length": 0})"),
                    {"pre_tokenizer.length must be at least 1"});
  expect_json_error(
      with(byte_level, R"("pre_tokenizer": {"type": "Punctuation", "behavior": "Sideways"})"),
      {"unknown split behavior 'Sideways'"});
  expect_json_error(
      with("\"normalizer\": null", R"("normalizer": {"type": "Strip", "strip_left": "yes"})"),
      {"strip_left must be true or false"});
  expect_json_error(
      with(
          "\"post_processor\": null",
          R"("post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<bos>"}}, {"Sequence": {"id": "A"}}]})"),
      {"'<bos>'", "neither in special_tokens nor in the vocabulary"});
}

TEST(TokenizerJson, MissingFileIsAnError) {
  expect_error([] { load_tokenizer("/nonexistent/tokenizer.json"); }, {"does not exist"});
}

class GgufVocabErrors : public npeff::testing::TempDirTest {
 protected:
  GgufWriter base() {
    GgufWriter w;
    w.add_string("general.architecture", "llama")
        .add_string("tokenizer.ggml.model", "gpt2")
        .add_string("tokenizer.ggml.pre", "smollm")
        .add_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "<|x|>"})
        .add_array<int32_t>("tokenizer.ggml.token_type", ValueType::INT32, {1, 1, 1, 3});
    return w;
  }
  void expect_gguf_error(GgufWriter w, const std::vector<std::string>& parts) {
    w.write(path("v.gguf"));
    expect_error([&] { load_tokenizer(path("v.gguf")); }, parts);
  }
};

TEST_F(GgufVocabErrors, ValidVocabularyLoads) {
  GgufWriter w = base();
  w.add_string_array("tokenizer.ggml.merges", {"a b"});
  w.write(path("v.gguf"));
  const Tokenizer tok = load_tokenizer(path("v.gguf"));
  EXPECT_EQ(tok.encode("ab<|x|>a"), (std::vector<int32_t>{2, 3, 0}));
  EXPECT_TRUE(tok.is_special(3));
}

TEST_F(GgufVocabErrors, MalformedVocabulariesAreRefused) {
  expect_gguf_error(base(), {"tokenizer.ggml.merges"});
  expect_gguf_error(base().add_string_array("tokenizer.ggml.merges", {"a c"}),
                    {"merge 0", "not in the vocabulary"});
  expect_gguf_error(base().add_string_array("tokenizer.ggml.merges", {"ab"}),
                    {"merges[0]", "two tokens"});
  GgufWriter bert;
  bert.add_string("tokenizer.ggml.model", "bert").add_string_array("tokenizer.ggml.tokens", {"a"});
  expect_gguf_error(bert, {"'bert' is not supported"});
  GgufWriter none;
  none.add_string("general.architecture", "llama");
  expect_gguf_error(none, {"no tokenizer"});
  GgufWriter pre;
  pre.add_string("tokenizer.ggml.model", "gpt2")
      .add_string("tokenizer.ggml.pre", "mystery")
      .add_string_array("tokenizer.ggml.tokens", {"a"})
      .add_string_array("tokenizer.ggml.merges", {});
  expect_gguf_error(pre, {"tokenizer.ggml.pre 'mystery' is not supported"});
  GgufWriter types;
  types.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", {"a", "b"})
      .add_array<int32_t>("tokenizer.ggml.token_type", ValueType::INT32, {1})
      .add_string_array("tokenizer.ggml.merges", {});
  expect_gguf_error(types, {"token_type has 1 entries"});
  GgufWriter bad_utf8;
  bad_utf8.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", {"a", "\xC3\x28"})
      .add_string_array("tokenizer.ggml.merges", {});
  expect_gguf_error(bad_utf8, {"token 1", "not valid UTF-8"});
  GgufWriter ints;
  ints.add_string("tokenizer.ggml.model", "gpt2")
      .add_array<int32_t>("tokenizer.ggml.tokens", ValueType::INT32, {1, 2});
  expect_gguf_error(ints, {"tokenizer.ggml.tokens"});
  GgufWriter scores;
  scores.add_string("tokenizer.ggml.model", "llama")
      .add_string_array("tokenizer.ggml.tokens", {"a", "b"})
      .add_array<float>("tokenizer.ggml.scores", ValueType::FLOAT32, {0.f});
  expect_gguf_error(scores, {"scores has 1 entries"});
}

class Llama2cErrors : public npeff::testing::TempDirTest {
 protected:
  void write(const std::string& bytes) {
    std::ofstream(path("tok.bin"), std::ios::binary) << bytes;
  }
};

std::string le32(int32_t v) {
  return std::string(reinterpret_cast<const char*>(&v), 4);
}

TEST_F(Llama2cErrors, MalformedFilesAreRefused) {
  write("");
  expect_error([&] { load_llama2c_tokenizer(path("tok.bin")); }, {"truncated", "header"});
  write(le32(-3));
  expect_error([&] { load_llama2c_tokenizer(path("tok.bin")); }, {"max_token_length -3"});
  write(le32(4) + le32(0) + le32(9) + "abcdefghi");
  expect_error([&] { load_llama2c_tokenizer(path("tok.bin")); }, {"token 0 has length 9"});
  write(le32(4) + le32(0) + le32(3) + "ab");
  expect_error([&] { load_llama2c_tokenizer(path("tok.bin")); }, {"past the end"});
  write(le32(4) + le32(0) + le32(1) + "a");
  expect_error([&] { load_llama2c_tokenizer(path("tok.bin")); }, {"1 tokens", "256 byte tokens"});
}

}  // namespace
}  // namespace npeff::tokenizer
