// Helpers for task and PEF tests: a character-level tokenizer whose ids fit the tiny models.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "npeff/task/task.h"
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

// An 8-example SST-2 look-alike label-tokens task whose data file is written to `data_path`.
inline task::Task toy_sentiment_task(const std::string& data_path) {
  std::ofstream(data_path) << "sentence\tlabel\ngreat fun\t1\nawful, dull\t0\nfine\t1\n"
                              "not good\t0\nWow!\t1\nbad, sad\t0\nnice\t1\npoor\t0\n";
  const nlohmann::json j = {{"name", "t"},
                            {"kind", "label-tokens"},
                            {"labels", {"Negative", "Positive"}},
                            {"label_prefix", ""},
                            {"template", "Review: {text}\nSentiment:"},
                            {"data",
                             {{"format", "tsv"},
                              {"path", data_path},
                              {"fields", {{"text", "sentence"}}},
                              {"label_field", "label"},
                              {"label_names", {{"0", "Negative"}, {"1", "Positive"}}}}}};
  return task::Task::from_json_text(j.dump(), "task.json");
}

}  // namespace npeff::testing
