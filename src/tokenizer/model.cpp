#include "tokenizer/model.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <queue>

#include "npeff/core/error.h"
#include "tokenizer/utf8.h"

namespace npeff::tokenizer {

namespace {
// Ids are int32 in every format we read; vocabularies are < 1M entries. The bound keeps a
// malformed file from making us allocate gigabytes for an id table.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

std::array<int32_t, 256> byte_fallback_ids(const Vocabulary& vocab) {
  std::array<int32_t, 256> ids{};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    ids[b] = vocab.find(name);
  }
  return ids;
}
}  // namespace

void Vocabulary::assign(std::vector<std::pair<std::string, int64_t>> entries,
                        std::string_view what) {
  int64_t max_id = -1;
  for (const auto& [piece, id] : entries) {
    NPEFF_CHECK(id >= 0 && id <= kMaxTokenId, what, ": token id ", id, " of '", piece,
                "' is out of range (expected 0..", kMaxTokenId, ")");
    max_id = std::max(max_id, id);
  }
  pieces_.assign(static_cast<size_t>(max_id + 1), std::string());
  present_.assign(static_cast<size_t>(max_id + 1), false);
  for (auto& [piece, id] : entries) {
    NPEFF_CHECK(!present_[id], what, ": token id ", id, " is given to both '", pieces_[id],
                "' and '", piece, "'");
    pieces_[id] = std::move(piece);
    present_[id] = true;
  }
  build_index();
}

void Vocabulary::assign_ordered(std::vector<std::string> pieces) {
  NPEFF_CHECK(static_cast<int64_t>(pieces.size()) <= kMaxTokenId + 1, "vocabulary of ",
              pieces.size(), " tokens is larger than supported (", kMaxTokenId + 1, ")");
  pieces_ = std::move(pieces);
  present_.assign(pieces_.size(), true);
  build_index();
}

void Vocabulary::build_index() {
  index_.clear();
  index_.reserve(pieces_.size());
  for (size_t id = 0; id < pieces_.size(); ++id) {
    // A repeated piece maps to its last id, as llama.cpp's token_to_id does.
    if (present_[id]) index_[pieces_[id]] = static_cast<int32_t>(id);
  }
}

// ---- BpeModel ------------------------------------------------------------------------------

BpeModel::BpeModel(std::vector<std::pair<std::string, int64_t>> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, Options options,
                   std::string_view what)
    : options_(std::move(options)) {
  static std::atomic<uint64_t> next_serial{1};
  serial_ = next_serial++;
  vocab_.assign(std::move(vocab), what);
  if (options_.unk_token) {
    unk_id_ = vocab_.find(*options_.unk_token);
    NPEFF_CHECK(unk_id_ >= 0, what, ": unk_token '", *options_.unk_token,
                "' is not in the vocabulary");
  }
  byte_ids_ = byte_fallback_ids(vocab_);
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = vocab_.find(a), ib = vocab_.find(b);
    NPEFF_CHECK(ia >= 0 && ib >= 0, what, ": merge ", rank, " ('", a, "' + '", b,
                "') refers to a token that is not in the vocabulary ('", ia < 0 ? a : b, "')");
    joined.assign(a).append(b);
    const int32_t merged = vocab_.find(joined);
    NPEFF_CHECK(merged >= 0, what, ": merge ", rank, " ('", a, "' + '", b, "') makes '", joined,
                "', which is not in the vocabulary");
    // A repeated pair keeps its last rank, as HF's merge map does.
    merges_[(static_cast<uint64_t>(static_cast<uint32_t>(ia)) << 32) | static_cast<uint32_t>(ib)] =
        Merge{static_cast<uint32_t>(rank), merged};
  }
}

namespace {
// Per-thread cache of merged words, as HF's BPE keeps one: text repeats words, and merging is
// the costly step. Bounded; keyed by the model's serial number (never reused, unlike addresses).
struct WordCache {
  static constexpr size_t kCapacity = 1 << 16;
  static constexpr size_t kMaxWordBytes = 64;
  std::unordered_map<uint64_t, std::unordered_map<std::string, std::vector<int32_t>>> by_model;
};
}  // namespace

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const int32_t whole = vocab_.find(word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  if (word.size() > WordCache::kMaxWordBytes) {
    merge_word(word, out);
    return;
  }
  thread_local WordCache cache;
  thread_local uint64_t last_serial = 0;
  thread_local std::unordered_map<std::string, std::vector<int32_t>>* last = nullptr;
  if (last_serial != serial_) {
    last = &cache.by_model[serial_];
    last_serial = serial_;
  }
  std::string key(word);
  const auto hit = last->find(key);
  if (hit != last->end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  const size_t before = out.size();
  merge_word(word, out);
  if (last->size() < WordCache::kCapacity) {
    last->emplace(
        std::move(key),
        std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(before), out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Initial symbols: one per character (HF merge_word): the character's token, else its bytes'
  // "<0xXX>" tokens (byte_fallback), else unk (consecutive unks fused with fuse_unk), else
  // nothing (HF drops the character).
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  bool pending_unk = false;
  const auto push = [&](int32_t id) {
    const int32_t n = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{id, n - 1, n + 1, true});
  };
  for (size_t i = 0; i < word.size();) {
    const size_t len = utf8::sequence_length(static_cast<unsigned char>(word[i]));
    const std::string_view ch = word.substr(i, len);
    i += len;
    const int32_t id = vocab_.find(ch);
    if (id >= 0) {
      if (pending_unk) push(unk_id_), pending_unk = false;
      push(id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (unsigned char b : ch) all = all && byte_ids_[b] >= 0;
      if (all) {
        // HF keeps a pending unk pending across byte-fallback characters.
        for (unsigned char b : ch) push(byte_ids_[b]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk && !options_.fuse_unk) push(unk_id_);
      pending_unk = true;
    }
  }
  if (pending_unk) push(unk_id_);
  if (sym.empty()) return;
  sym.back().next = -1;

  // Merge the lowest-rank pair first, leftmost among equal ranks (HF word.rs merge_all).
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Candidate& o) const {  // priority_queue is a max-heap: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  for (size_t p = 0; p + 1 < sym.size(); ++p) {
    if (const Merge* m = find_merge(sym[p].id, sym[p + 1].id)) {
      queue.push(Candidate{m->rank, static_cast<int32_t>(p), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    const Merge* m = find_merge(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = find_merge(sym[left.prev].id, left.id)) {
        queue.push(Candidate{pm->rank, left.prev, pm->new_id});
      }
    }
    if (left.next >= 0) {
      if (const Merge* nm = find_merge(left.id, sym[left.next].id)) {
        queue.push(Candidate{nm->rank, top.pos, nm->new_id});
      }
    }
  }
  for (int32_t p = 0; p >= 0; p = sym[p].next) out.push_back(sym[p].id);
}

// ---- ScoreModel ----------------------------------------------------------------------------

ScoreModel::ScoreModel(std::vector<std::string> pieces, std::vector<float> scores,
                       std::array<int32_t, 256> byte_ids, int32_t unk_id, std::vector<bool> normal)
    : scores_(std::move(scores)), byte_ids_(byte_ids), unk_id_(unk_id), normal_(std::move(normal)) {
  NPEFF_ASSERT(pieces.size() == scores_.size(), "pieces/scores size mismatch");
  NPEFF_ASSERT(normal_.empty() || normal_.size() == pieces.size(), "pieces/types size mismatch");
  vocab_.assign_ordered(std::move(pieces));
}

void ScoreModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  // Symbols are byte ranges of `word`, initially one per character.
  struct Symbol {
    uint32_t start, len;  // len == 0: merged away
    int32_t prev, next;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    const uint32_t len = static_cast<uint32_t>(
        std::min(utf8::sequence_length(static_cast<unsigned char>(word[i])), word.size() - i));
    const int32_t n = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{static_cast<uint32_t>(i), len, n - 1, n + 1});
    i += len;
  }
  sym.back().next = -1;

  // Merge the adjacent pair whose concatenation is the highest-scoring piece; among equal
  // scores the leftmost (llama2.c's scan, sentencepiece's and llama.cpp's agenda order).
  struct Candidate {
    float score;
    int32_t left;
    uint32_t len;  // of the merged piece, to recognise stale entries
    bool operator<(const Candidate& o) const {
      return score != o.score ? score < o.score : left > o.left;
    }
  };
  std::priority_queue<Candidate> queue;
  const auto try_pair = [&](int32_t l) {
    if (l < 0 || sym[l].next < 0) return;
    const Symbol& a = sym[l];
    const Symbol& b = sym[a.next];
    const int32_t id = find_normal(word.substr(a.start, a.len + b.len));
    if (id >= 0) queue.push(Candidate{scores_[id], l, a.len + b.len});
  };
  for (int32_t p = 0; p + 1 < static_cast<int32_t>(sym.size()); ++p) try_pair(p);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& a = sym[top.left];
    if (a.len == 0 || a.next < 0) continue;
    Symbol& b = sym[a.next];
    if (a.len + b.len != top.len) continue;  // one side changed since this entry was pushed
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (a.next >= 0) sym[a.next].prev = top.left;
    try_pair(a.prev);
    try_pair(top.left);
  }
  for (int32_t p = 0; p >= 0; p = sym[p].next) {
    const std::string_view piece = word.substr(sym[p].start, sym[p].len);
    const int32_t id = find_normal(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    bool all = true;  // unknown character: its bytes' tokens, else unk
    for (unsigned char b : piece) all = all && byte_ids_[b] >= 0;
    if (all) {
      for (unsigned char b : piece) out.push_back(byte_ids_[b]);
    } else {
      NPEFF_CHECK(unk_id_ >= 0, "character '", piece,
                  "' is not in the vocabulary, which has neither byte tokens nor an unknown token");
      out.push_back(unk_id_);
    }
  }
}

}  // namespace npeff::tokenizer
