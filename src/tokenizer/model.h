// Vocabulary and the two subword models (internal):
//  - BpeModel: merges applied by rank (HF `tokenizers` BPE, GGUF `gpt2`), with HF's
//    byte_fallback, unk/fuse_unk and ignore_merges semantics.
//  - ScoreModel: SentencePiece-style BPE, adjacent pieces merged by the score of the merged
//    piece (sentencepiece's bpe_model, llama2.c's encode, GGUF `llama`).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace npeff::tokenizer {

class Vocabulary {
 public:
  Vocabulary() = default;
  Vocabulary(const Vocabulary&) = delete;  // the index points into pieces_
  Vocabulary& operator=(const Vocabulary&) = delete;

  // `entries` are (piece, id) pairs; ids need not be contiguous but must be unique. `what`
  // names the source in error messages.
  void assign(std::vector<std::pair<std::string, int64_t>> entries, std::string_view what);
  // Pieces in id order, ids 0..n-1.
  void assign_ordered(std::vector<std::string> pieces);

  int32_t find(std::string_view piece) const {  // -1 when absent
    const auto it = index_.find(piece);
    return it == index_.end() ? -1 : it->second;
  }
  bool has_id(int64_t id) const { return id >= 0 && id < size() && present_[id]; }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  int64_t size() const { return static_cast<int64_t>(pieces_.size()); }
  int64_t count() const { return static_cast<int64_t>(index_.size()); }

 private:
  void build_index();
  std::vector<std::string> pieces_;
  std::vector<bool> present_;
  std::unordered_map<std::string_view, int32_t> index_;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-tokenized piece.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  const Vocabulary& vocab() const { return vocab_; }
  Vocabulary& vocab() { return vocab_; }

 protected:
  Vocabulary vocab_;
};

class BpeModel final : public Model {
 public:
  struct Options {
    std::optional<std::string> unk_token;
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
  };
  // `merges` in rank order; each side must be in the vocabulary, as must their concatenation.
  BpeModel(std::vector<std::pair<std::string, int64_t>> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, Options options,
           std::string_view what);
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };
  const Merge* find_merge(int32_t a, int32_t b) const {
    const auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
                                 static_cast<uint32_t>(b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  Options options_;
  uint64_t serial_ = 0;  // identifies this model's entries in the per-thread word cache
  int32_t unk_id_ = -1;
  std::array<int32_t, 256> byte_ids_{};  // "<0xXX>" tokens for byte_fallback, -1 if absent
  std::unordered_map<uint64_t, Merge> merges_;
};

class ScoreModel final : public Model {
 public:
  // `byte_ids[b]` is the token of raw byte b (or -1); `unk_id` may be -1. `normal[id]` says
  // whether text may become piece `id` by merging (sentencepiece never produces control, unknown
  // or byte pieces from text); empty means every piece.
  ScoreModel(std::vector<std::string> pieces, std::vector<float> scores,
             std::array<int32_t, 256> byte_ids, int32_t unk_id, std::vector<bool> normal = {});
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  const std::vector<float>& scores() const { return scores_; }

 private:
  int32_t find_normal(std::string_view piece) const {
    const int32_t id = vocab_.find(piece);
    return id >= 0 && (normal_.empty() || normal_[id]) ? id : -1;
  }
  std::vector<float> scores_;
  std::array<int32_t, 256> byte_ids_{};
  int32_t unk_id_ = -1;
  std::vector<bool> normal_;
};

}  // namespace npeff::tokenizer
