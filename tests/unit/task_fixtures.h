// Helpers for task and PEF tests: a character-level tokenizer whose ids fit the tiny models.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "npeff/tokenizer/tokenizer.h"

namespace npeff::testing {

// A character-level BPE tokenizer.json (no merges) whose ids fit the tiny models' 96-token vocab.
inline std::string char_tokenizer_json() {
  nlohmann::json vocab = {{"<unk>", 0}};
  const std::string chars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :.,?!\n'-";
  for (size_t i = 0; i < chars.size(); ++i)
    vocab[std::string(1, chars[i])] = static_cast<int>(i + 1);
  const nlohmann::json tok = {{"model",
                               {{"type", "BPE"},
                                {"vocab", vocab},
                                {"merges", nlohmann::json::array()},
                                {"unk_token", "<unk>"},
                                {"fuse_unk", true}}}};
  return tok.dump();
}

inline tokenizer::Tokenizer char_tokenizer() {
  return tokenizer::load_hf_tokenizer_json_text(char_tokenizer_json(), "chars.json");
}

}  // namespace npeff::testing
