// Tokenizer internals against independent references: the merge engines against brute-force
// versions of the algorithms they implement (HF word-by-word rank merging; llama2.c's scan for
// the best-scoring pair), HF's split behaviours on the example of its documentation, UTF-8
// handling, and every malformed-input path (npeff::Error with a message, never a crash).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "npeff/core/error.h"
#include "npeff/tokenizer/tokenizer.h"
#include "tokenizer/model.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/utf8.h"
#include "unit/gguf_writer.h"
#include "unit/test_util.h"

namespace npeff::tokenizer {
namespace {

using npeff::testing::source_dir;

using json = nlohmann::json;
using npeff::testing::expect_error;

std::string fixture(const std::string& rel) {
  return source_dir() + "/tests/fixtures/tokenizers/" + rel;
}
std::string shared_dir() {
  const char* s = std::getenv("NPEFF_SHARED_DIR");
  return s ? s : source_dir() + "/../shared";
}
bool file_exists(const std::string& p) {
  return std::ifstream(p).good();
}

// ---- UTF-8 ----------------------------------------------------------------------------------

TEST(Utf8, LossyMatchesRustFromUtf8Lossy) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::lossy("abc"), "abc");
  EXPECT_EQ(utf8::lossy("\xC3\x28"), r + "(");
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98"), r);          // truncated 4-byte: one maximal subpart
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), r + r + r);  // surrogate: ED alone, then A0, 80
  EXPECT_EQ(utf8::lossy("\xE0\x80\x80"), r + r + r);  // overlong
  EXPECT_EQ(utf8::lossy("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(utf8::lossy("a\xFF"
                        "b\xE2\x82"),
            "a" + r + "b" + r);
  EXPECT_EQ(utf8::lossy("\xE2\x82\xAC"), "\xE2\x82\xAC");
}

TEST(Utf8, EncodeRejectsInvalidTextWithItsOffset) {
  const Tokenizer tok = load_hf_tokenizer_json(fixture("bytelevel_gpt2/tokenizer.json"));
  expect_error([&] { tok.encode("ok\xC3"); }, {"not valid UTF-8", "offset 2"});
  expect_error([&] { tok.decode({-1}); }, {"token id -1"});
  expect_error([&] { tok.decode({static_cast<int32_t>(tok.vocab_size())}); }, {"outside"});
}

// ---- Rank-based BPE vs. brute force ------------------------------------------------------------

// Brute force: repeatedly merge the adjacent pair of lowest rank, leftmost among equals.
std::vector<std::string> brute_force_bpe(
    const std::vector<std::string>& chars,
    const std::map<std::pair<std::string, std::string>, size_t>& ranks) {
  std::vector<std::string> s = chars;
  while (true) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const auto it = ranks.find({s[i], s[i + 1]});
      if (it != ranks.end() && it->second < best) best = it->second, at = i;
    }
    if (best == SIZE_MAX) return s;
    s[at] += s[at + 1];
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
}

std::vector<std::string> utf8_chars(const std::string& w) {
  std::vector<std::string> out;
  for (size_t i = 0; i < w.size();) {
    const size_t n = utf8::sequence_length(static_cast<unsigned char>(w[i]));
    out.push_back(w.substr(i, n));
    i += n;
  }
  return out;
}

TEST(BpeModel, MatchesBruteForceOnTheTrainedByteLevelVocabulary) {
  std::ifstream in(fixture("bytelevel_gpt2/tokenizer.json"));
  const json root = json::parse(in);
  std::vector<std::pair<std::string, int64_t>> vocab;
  for (auto it = root["model"]["vocab"].begin(); it != root["model"]["vocab"].end(); ++it) {
    vocab.emplace_back(it.key(), it.value().get<int64_t>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  std::map<std::pair<std::string, std::string>, size_t> ranks;
  for (const json& m : root["model"]["merges"]) {
    std::pair<std::string, std::string> p;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      p = {s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)};
    } else {
      p = {m[0].get<std::string>(), m[1].get<std::string>()};
    }
    ranks.emplace(p, merges.size());
    merges.push_back(p);
  }
  const BpeModel model(vocab, merges, {}, "test");
  // Words drawn from the characters of frequent tokens so that many merges apply.
  std::vector<std::string> alphabet;
  for (const auto& [piece, id] : vocab) {
    const auto cs = utf8_chars(piece);
    if (cs.size() == 1 && id < 400) alphabet.push_back(piece);
  }
  const uint64_t seed = 20261125;
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string word;
    const int len = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) word += alphabet[rng() % alphabet.size()];
    std::vector<int32_t> ids;
    model.tokenize(word, ids);
    std::vector<std::string> got;
    for (int32_t id : ids) got.push_back(model.vocab().piece(id));
    ASSERT_EQ(got, brute_force_bpe(utf8_chars(word), ranks))
        << "seed " << seed << " trial " << trial << " word '" << word << "'";
  }
}

TEST(BpeModel, UnknownCharactersFollowHfRules) {
  std::vector<std::pair<std::string, int64_t>> vocab = {{"<unk>", 0}, {"a", 1},      {"b", 2},
                                                        {"ab", 3},    {"<0xC3>", 4}, {"<0xA9>", 5}};
  BpeModel::Options o;
  o.unk_token = "<unk>";
  const BpeModel fused(
      vocab, {{"a", "b"}},
      [&] {
        auto x = o;
        x.fuse_unk = true;
        return x;
      }(),
      "t");
  std::vector<int32_t> ids;
  fused.tokenize("xyab", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 3}));  // consecutive unknowns fused
  const BpeModel unfused(vocab, {{"a", "b"}}, o, "t");
  ids.clear();
  unfused.tokenize("xyab", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 0, 3}));
  auto fb = o;
  fb.byte_fallback = true;
  const BpeModel fallback(vocab, {{"a", "b"}}, fb, "t");
  ids.clear();
  fallback.tokenize(
      "a\xC3\xA9"
      "b",
      ids);  // é -> its two byte tokens; a and b not adjacent
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 4, 5, 2}));
  const BpeModel no_unk(vocab, {{"a", "b"}}, {}, "t");
  ids.clear();
  no_unk.tokenize("azb", ids);  // HF drops characters it cannot represent: "a" "b" then merge
  EXPECT_EQ(ids, (std::vector<int32_t>{3}));
}

// ---- Score-based merging vs. llama2.c's loop ---------------------------------------------------

// llama2.c run.c encode(), written from its description: dummy prefix " ", characters (unknown
// ones as byte + 3), then repeatedly merge the best-scoring pair (strictly greater: leftmost).
std::vector<int32_t> llama2c_reference(const std::vector<std::string>& vocab,
                                       const std::vector<float>& scores, const std::string& text) {
  std::map<std::string, int32_t> lookup;
  for (size_t i = 0; i < vocab.size(); ++i) lookup.emplace(vocab[i], static_cast<int32_t>(i));
  const auto find = [&](const std::string& s) {
    const auto it = lookup.find(s);
    return it == lookup.end() ? -1 : it->second;
  };
  std::vector<int32_t> tokens;
  if (!text.empty()) tokens.push_back(find(" "));
  for (const std::string& ch : utf8_chars(text)) {
    const int32_t id = find(ch);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : ch) tokens.push_back(static_cast<int32_t>(b) + 3);
    }
  }
  while (true) {
    float best = -1e10f;
    int32_t best_id = -1, at = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      const int32_t id = find(vocab[tokens[i]] + vocab[tokens[i + 1]]);
      if (id != -1 && scores[id] > best)
        best = scores[id], best_id = id, at = static_cast<int32_t>(i);
    }
    if (at < 0) return tokens;
    tokens[at] = best_id;
    tokens.erase(tokens.begin() + at + 1);
  }
}

void read_llama2c(const std::string& path, std::vector<std::string>& vocab,
                  std::vector<float>& scores) {
  std::ifstream in(path, std::ios::binary);
  int32_t max_len = 0;
  in.read(reinterpret_cast<char*>(&max_len), 4);
  float score;
  int32_t len;
  while (in.read(reinterpret_cast<char*>(&score), 4) && in.read(reinterpret_cast<char*>(&len), 4)) {
    std::string s(static_cast<size_t>(len), '\0');
    in.read(s.data(), len);
    vocab.push_back(s);
    scores.push_back(score);
  }
}

void check_against_llama2c_loop(const std::string& path, const std::vector<std::string>& texts) {
  std::vector<std::string> vocab;
  std::vector<float> scores;
  read_llama2c(path, vocab, scores);
  const Tokenizer tok = load_llama2c_tokenizer(path);
  EncodeOptions plain;
  plain.add_special_tokens = false;
  plain.parse_special = false;
  for (const std::string& text : texts) {
    ASSERT_EQ(tok.encode(text, plain), llama2c_reference(vocab, scores, text))
        << path << ": text '" << text << "'";
  }
}

std::vector<std::string> random_texts(uint64_t seed, int count) {
  const std::vector<std::string> alphabet = {"a",
                                             "b",
                                             "e",
                                             "t",
                                             "h",
                                             " ",
                                             "o",
                                             "n",
                                             "s",
                                             "i",
                                             "d",
                                             "\xC3\xA9",
                                             "\xE4\xB8\xAD",
                                             "\xF0\x9F\x98\x80",
                                             "!",
                                             "\n",
                                             "T",
                                             "w"};
  std::mt19937_64 rng(seed);
  std::vector<std::string> out = {"", " ", "  a  "};
  for (int i = 0; i < count; ++i) {
    std::string t;
    const int len = static_cast<int>(rng() % 40);
    for (int k = 0; k < len; ++k) t += alphabet[rng() % alphabet.size()];
    out.push_back(t);
  }
  return out;
}

TEST(ScoreModel, MatchesLlama2cLoopOnTheSentencePieceFixture) {
  check_against_llama2c_loop(fixture("spm/tokenizer.bin"), random_texts(7, 2000));
}

TEST(ScoreModel, MatchesLlama2cLoopOnStories260K) {
  const std::string path = shared_dir() + "/models/stories260K/tok512.bin";
  if (!file_exists(path)) GTEST_SKIP() << "../shared absent: " << path;
  std::vector<std::string> texts = random_texts(11, 1000);
  std::ifstream sst(shared_dir() + "/data/sst2/validation.tsv");
  std::string line;
  std::getline(sst, line);
  while (std::getline(sst, line)) texts.push_back(line.substr(0, line.rfind('\t')));
  check_against_llama2c_loop(path, texts);
}

TEST(ScoreModel, HigherScoreWinsAndTiesGoLeft) {
  // "abc": pairs "ab" (score 1) and "bc" (score 2): bc merges first -> a + bc.
  std::array<int32_t, 256> no_bytes{};
  no_bytes.fill(-1);
  const ScoreModel m({"a", "b", "c", "ab", "bc"}, {0, 0, 0, 1, 2}, no_bytes, -1);
  std::vector<int32_t> ids;
  m.tokenize("abc", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 4}));
  // Equal scores: the leftmost pair merges ("aaa" -> "aa" + "a").
  const ScoreModel t({"a", "aa"}, {0, 1}, no_bytes, -1);
  ids.clear();
  t.tokenize("aaa", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 0}));
}

// ---- Split behaviours (HF's documented example) --------------------------------------------

std::vector<std::string> split_with(SplitBehavior b, bool invert = false) {
  Pattern dash;
  dash.literal = "-";
  std::vector<Piece> pieces = {Piece{"the-final--countdown", true}};
  make_split_pre_tokenizer(dash, b, invert)->split(pieces);
  std::vector<std::string> out;
  for (const Piece& p : pieces) out.push_back(p.text);
  return out;
}

TEST(PreTokenizers, SplitBehavioursMatchHfDocumentation) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split_with(SplitBehavior::kRemoved), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split_with(SplitBehavior::kIsolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_with(SplitBehavior::kMergedWithPrevious),
            (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_with(SplitBehavior::kMergedWithNext), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_with(SplitBehavior::kContiguous), (V{"the", "-", "final", "--", "countdown"}));
}

// A normalizer that removes the text's first character moves the start off original offset 0,
// and Metaspace's prepend_scheme "first" then prepends nothing. Expected pieces from tokenizers
// 0.23.3 with these components on the spbpe_llama2 vocabulary (tokenizers aligns a replacement
// with the last character of its match).
TEST(Normalizers, RemovingTheFirstCharacterStopsMetaspaceFirstFromPrepending) {
  std::ifstream in(fixture("spbpe_llama2/tokenizer.json"));
  nlohmann::json j = nlohmann::json::parse(in);
  j["pre_tokenizer"] = {{"type", "Metaspace"},
                        {"replacement", "\u2581"},
                        {"prepend_scheme", "first"},
                        {"split", true}};
  j["post_processor"] = nullptr;
  const auto pieces = [&](const nlohmann::json& normalizer, const std::string& text) {
    j["normalizer"] = normalizer;
    const Tokenizer tok = load_hf_tokenizer_json_text(j.dump(), "t.json");
    std::vector<std::string> out;
    for (int32_t id : tok.encode(text)) out.push_back(tok.piece(id));
    return out;
  };
  using V = std::vector<std::string>;
  const auto replace = [](const char* regex, const char* content) {
    return nlohmann::json{
        {"type", "Replace"}, {"pattern", {{"Regex", regex}}}, {"content", content}};
  };
  EXPECT_EQ(pieces(replace("^ +", "x"), "  a"), (V{"x", "a"}));
  EXPECT_EQ(pieces(replace("^ +", ""), "  a"), (V{"a"}));
  EXPECT_EQ(pieces(replace("a", "bc"), "ad"), (V{"\u2581b", "c", "d"}));
  EXPECT_EQ(pieces({{"type", "StripAccents"}}, "\u0301ad"), (V{"ad"}));
  EXPECT_EQ(pieces({{"type", "Nmt"}}, "\u0001ad"), (V{"ad"}));
  EXPECT_EQ(pieces({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, "  ad"),
            (V{"ad"}));
  EXPECT_EQ(pieces({{"type", "NFKC"}}, "ad"), (V{"\u2581ad"}));
}

// ---- Concurrency -------------------------------------------------------------------------------

TEST(Tokenizer, ConcurrentEncodeIsDeterministic) {
  const Tokenizer tok = load_tokenizer(fixture("bytelevel_llama3/tokenizer.json"));
  const std::vector<std::string> texts = random_texts(3, 300);
  std::vector<std::vector<int32_t>> serial;
  for (const auto& t : texts) serial.push_back(tok.encode(t));
  std::vector<std::vector<int32_t>> a(texts.size()), b(texts.size());
  std::thread t1([&] {
    for (size_t i = 0; i < texts.size(); ++i) a[i] = tok.encode(texts[i]);
  });
  std::thread t2([&] {
    for (size_t i = texts.size(); i-- > 0;) b[i] = tok.encode(texts[i]);
  });
  t1.join();
  t2.join();
  EXPECT_EQ(a, serial);
  EXPECT_EQ(b, serial);
}

}  // namespace
}  // namespace npeff::tokenizer

// ---- llama2.c: the real stories260K tokenizer ------------------------------------------------

namespace npeff::tokenizer {
namespace {

// Streaming generation output (npeff generate without --json): characters whose bytes arrive in
// separate byte-fallback tokens, and bytes that never form valid UTF-8. Regression: the CLI died
// with "basic_string::compare: __pos ... > this->size()" on a 2-byte text ending in byte tokens.
TEST(TextStream, HandsOutExactlyTheDecodedTextWithoutSplittingCharacters) {
  const Tokenizer tok = load_tokenizer(fixture("spm/tokenizer.bin"));
  auto byte_id = [&](int b) {
    char piece[8];
    std::snprintf(piece, sizeof piece, "<0x%02X>", b);
    const auto id = tok.find_piece(piece);
    EXPECT_TRUE(id.has_value()) << piece;
    return id.value_or(0);
  };
  const std::vector<std::vector<int32_t>> cases = {
      {byte_id(0xE2), byte_id(0x82), byte_id(0xAC)},  // "€" in 3 tokens
      {byte_id(0xFD), byte_id(0x55)},                 // invalid, then 'U'
      {byte_id(0x55)},                                // one byte token
      {byte_id(0xF0), byte_id(0x9F)},                 // never completed
      tok.encode("Hi \xC3\xA9t\xC3\xA9 \xE2\x82\xAC"
                 "5",
                 {false}),  // mixed
  };
  for (const auto& ids : cases) {
    TextStream stream(tok, {}, DecodeOptions{true});
    std::string shown;
    for (const int32_t id : ids) {
      const std::string piece = stream.push(id);
      // What is handed out is final: a prefix of the whole text, never a split character.
      shown += piece;
      EXPECT_EQ(tok.decode(ids, DecodeOptions{true}).compare(0, shown.size(), shown), 0);
      if (!piece.empty()) {
        EXPECT_NE(static_cast<unsigned char>(piece.back()) & 0xC0, 0xC0);
      }
    }
    shown += stream.finish();
    EXPECT_EQ(shown, tok.decode(ids, DecodeOptions{true}));
  }
  // Nothing of "€" is handed out until its last byte arrives.
  TextStream euro(tok, {}, DecodeOptions{true});
  EXPECT_EQ(euro.push(byte_id(0xE2)), "");
  EXPECT_EQ(euro.push(byte_id(0x82)), "");
  EXPECT_EQ(euro.push(byte_id(0xAC)), "\xE2\x82\xAC");
  EXPECT_EQ(euro.finish(), "");
}

TEST(Llama2c, GreedyStoryIdsDecodeToTheExpectedText) {
  const std::string path = shared_dir() + "/models/stories260K/tok512.bin";
  if (!file_exists(path)) GTEST_SKIP() << "../shared absent: " << path;
  std::ifstream in(source_dir() + "/tests/fixtures/models/llama2c_story_greedy.json");
  const json story = json::parse(in);
  const Tokenizer tok = load_tokenizer(path);
  EXPECT_EQ(tok.vocab_size(), 512);
  const std::vector<int32_t> ids = story["ids"].get<std::vector<int32_t>>();
  const std::string text = tok.decode(ids, DecodeOptions{true});
  EXPECT_EQ(text, story["text"].get<std::string>());
  EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park",
                       0),
            0u)
      << text;
}

TEST(Llama2c, EncodeDecodeRoundTripsEverySst2Sentence) {
  const std::string path = shared_dir() + "/models/stories260K/tok512.bin";
  const std::string sst = shared_dir() + "/data/sst2/train.tsv";
  if (!file_exists(path) || !file_exists(sst)) GTEST_SKIP() << "../shared absent";
  const Tokenizer tok = load_tokenizer(path);
  std::ifstream in(sst);
  std::string line;
  std::getline(in, line);
  int64_t n = 0, byte_tokens = 0;
  while (std::getline(in, line)) {
    const std::string text = line.substr(0, line.rfind('\t'));
    const std::vector<int32_t> ids = tok.encode(text);  // BOS + pieces, as run.c generates
    ASSERT_EQ(ids.front(), 1);
    for (int32_t id : ids) byte_tokens += id >= 3 && id < 259;
    ASSERT_EQ(tok.decode(ids, DecodeOptions{true}), text) << "line " << n + 2;
    ++n;
  }
  EXPECT_EQ(n, 67349);
  std::cout << "[ info ] " << n << " sentences round-trip; " << byte_tokens
            << " characters needed byte fallback\n";
}

}  // namespace
}  // namespace npeff::tokenizer
