// llama2.c `tokenizer.bin`: int32 max_token_length, then per token float32 score, int32 length,
// bytes. Encoding follows llama2.c's run.c encode(): a dummy-prefix " " for non-empty text,
// one symbol per UTF-8 character (unknown characters become their bytes' tokens, id = byte + 3),
// then repeated merging of the adjacent pair whose concatenation has the highest score.
#include <cstring>
#include <fstream>
#include <sstream>

#include "npeff/core/error.h"
#include "tokenizer/pipeline.h"

namespace npeff::tokenizer {

Tokenizer load_llama2c_tokenizer(const std::string& path, int64_t vocab_size) {
  std::ifstream in(path, std::ios::binary);
  NPEFF_CHECK(in.good(), "cannot open tokenizer file ", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  size_t offset = 0;
  const auto read = [&](void* dst, size_t n, const char* what, size_t token) {
    NPEFF_CHECK(offset + n <= data.size(), path, ": llama2.c tokenizer truncated at byte ", offset,
                " reading the ", what, " of token ", token, " (file has ", data.size(), " bytes)");
    std::memcpy(dst, data.data() + offset, n);
    offset += n;
  };
  int32_t max_token_length = 0;
  read(&max_token_length, 4, "header", 0);
  NPEFF_CHECK(max_token_length > 0 && max_token_length < (1 << 20), path, ": max_token_length ",
              max_token_length, " is not plausible (expected 1..2^20)");

  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (vocab_size < 0 ? offset < data.size() : static_cast<int64_t>(pieces.size()) < vocab_size) {
    const size_t token = pieces.size();
    float score = 0;
    int32_t length = 0;
    read(&score, 4, "score", token);
    read(&length, 4, "length", token);
    NPEFF_CHECK(length >= 0 && length <= max_token_length, path, ": token ", token, " has length ",
                length, " (expected 0..max_token_length=", max_token_length, ")");
    NPEFF_CHECK(offset + static_cast<size_t>(length) <= data.size(), path, ": token ", token,
                " runs past the end of the file");
    pieces.emplace_back(data.substr(offset, static_cast<size_t>(length)));
    scores.push_back(score);
    offset += static_cast<size_t>(length);
    NPEFF_CHECK(pieces.size() <= (size_t{1} << 24), path, ": more than 2^24 tokens");
  }
  NPEFF_CHECK(offset == data.size(), path, ": ", data.size() - offset,
              " bytes follow the last of the ", pieces.size(), " tokens");
  NPEFF_CHECK(pieces.size() >= 3 + 256, path, ": ", pieces.size(),
              " tokens; a llama2.c vocabulary has <unk>, <s>, </s> and 256 byte tokens first");
  std::array<int32_t, 256> byte_ids{};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    NPEFF_CHECK(pieces[b + 3] == name, path, ": token ", b + 3, " is '", pieces[b + 3],
                "', expected the byte token ", name, " (llama2.c maps byte b to id b + 3)");
    byte_ids[b] = b + 3;
  }
  const int64_t n = static_cast<int64_t>(pieces.size());

  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->source_path = path;
  impl->model = std::make_unique<ScoreModel>(std::move(pieces), std::move(scores), byte_ids, 0);
  impl->normalizers.push_back(make_prepend_normalizer(" "));  // llama2.c's dummy prefix
  impl->llama2c_decode = true;
  impl->unk = 0;
  impl->bos = 1;
  impl->eos = 2;
  impl->prefix_ids = {1};
  impl->finalize();
  for (int32_t id : {0, 1, 2}) impl->special[id] = true;
  impl->description =
      "llama2.c tokenizer.bin: SentencePiece-style scores, " + std::to_string(n) + " tokens";
  return Tokenizer(std::move(impl));
}

}  // namespace npeff::tokenizer
