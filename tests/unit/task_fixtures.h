// Helpers for task and PEF tests: a character-level tokenizer whose ids fit the tiny models.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "npeff/tokenizer/tokenizer.h"

namespace npeff::testing {

// A character-level BPE tokenizer (no merges) whose ids fit the tiny models' 96-token vocab.
inline tokenizer::Tokenizer char_tokenizer() {
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
  return tokenizer::load_hf_tokenizer_json_text(tok.dump(), "chars.json");
}

}  // namespace npeff::testing
