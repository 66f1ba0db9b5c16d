// Tokenizer: added-token matching, the encode/decode pipeline, and the public class.
#include "npeff/tokenizer/tokenizer.h"

#include <algorithm>
#include <cstring>

#include "npeff/core/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/utf8.h"

namespace npeff::tokenizer {

// ---- AddedTokenMatcher -------------------------------------------------------------------------

void AddedTokenMatcher::build(const std::vector<AddedToken>& tokens, bool normalized,
                              bool include_special) {
  tokens_.clear();
  by_first_byte_.assign(256, {});
  for (const AddedToken& t : tokens) {
    if (t.pattern().empty() || t.normalized != normalized) continue;
    if (t.special && !include_special) continue;
    tokens_.push_back(&t);
    by_first_byte_[static_cast<unsigned char>(t.pattern()[0])].push_back(&t);
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [](const AddedToken* a, const AddedToken* b) {
      return a->pattern().size() > b->pattern().size();
    });
  }
}

namespace {
// Byte length of the whitespace run ending at `text`'s end / starting at its beginning.
size_t trailing_whitespace(std::string_view text) {
  size_t begin = text.size();
  size_t i = 0, run_start = 0;
  bool in_run = false;
  while (i < text.size()) {
    const size_t n = utf8::sequence_length(static_cast<unsigned char>(text[i]));
    const bool ws = utf8::is_whitespace(utf8::decode_at(text, i));
    if (ws && !in_run) run_start = i;
    in_run = ws;
    i += n;
  }
  if (in_run) begin = run_start;
  return text.size() - begin;
}
size_t leading_whitespace(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && utf8::is_whitespace(utf8::decode_at(text, i))) {
    i += utf8::sequence_length(static_cast<unsigned char>(text[i]));
  }
  return i;
}
}  // namespace

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t done = 0;  // text[0, done) is already emitted
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* hit = nullptr;
    for (const AddedToken* t : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      if (text.compare(pos, t->pattern().size(), t->pattern()) == 0) {
        hit = t;  // longest first
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + hit->pattern().size();
    if (hit->lstrip) begin = std::max(done, begin - trailing_whitespace(text.substr(0, begin)));
    if (hit->rstrip) end += leading_whitespace(text.substr(end));
    if (done < begin) out.push_back(Segment{done, begin, -1});
    out.push_back(Segment{begin, end, hit->id});
    done = pos = end;
  }
  if (done < text.size() || out.empty()) out.push_back(Segment{done, text.size(), -1});
}

// ---- Impl --------------------------------------------------------------------------------------

void Tokenizer::Impl::finalize() {
  NPEFF_ASSERT(model != nullptr, "tokenizer without a model");
  const Vocabulary& v = model->vocab();
  vocab_size = v.size();
  for (const AddedToken& t : added) vocab_size = std::max<int64_t>(vocab_size, t.id + 1);
  added_by_id.assign(static_cast<size_t>(vocab_size), nullptr);
  special.assign(static_cast<size_t>(vocab_size), false);
  for (const AddedToken& t : added) {
    NPEFF_CHECK(t.id >= 0, source_path, ": added token '", t.content, "' has a negative id");
    NPEFF_CHECK(!t.content.empty(), source_path, ": added token ", t.id, " has empty content");
    utf8::check_valid(t.content, "added token content");
    added_by_id[t.id] = &t;
    if (t.special) special[t.id] = true;
  }
  for (const std::optional<int32_t>* id : {&bos, &eos, &pad, &unk}) {
    if (*id) {
      NPEFF_CHECK(**id >= 0 && **id < vocab_size && (v.has_id(**id) || added_by_id[**id]),
                  source_path, ": special token id ", **id, " is not in the vocabulary (size ",
                  vocab_size, ")");
    }
  }
  for (int32_t id : prefix_ids)
    NPEFF_CHECK(id >= 0 && id < vocab_size, source_path, ": post-processor token id ", id,
                " out of range");
  for (int32_t id : suffix_ids)
    NPEFF_CHECK(id >= 0 && id < vocab_size, source_path, ": post-processor token id ", id,
                " out of range");
  raw_all.build(added, false, true);
  raw_plain.build(added, false, false);
  normalized_all.build(added, true, true);
  normalized_plain.build(added, true, false);
}

const std::string& Tokenizer::Impl::piece(int32_t id) const {
  NPEFF_CHECK(id >= 0 && id < vocab_size, "token id ", id, " is outside the vocabulary (0..",
              vocab_size - 1, ")");
  // tokenizers >= 0.22 hands the decoder a normalized added token's normalized content (so that
  // a ByteLevel normalizer's output decodes back), and lists it so among the pieces.
  if (const AddedToken* t = added_by_id[id])
    return t->normalized && !t->match.empty() ? t->match : t->content;
  NPEFF_CHECK(model->vocab().has_id(id), "token id ", id, " is not used by this vocabulary");
  return model->vocab().piece(id);
}

void Tokenizer::Impl::encode_text(std::string_view text, bool at_start, bool parse_special,
                                  std::vector<int32_t>& out) const {
  std::string normalized(text);
  bool start_moved = false;
  for (const auto& n : normalizers) n->normalize(normalized, start_moved);
  at_start = at_start && !start_moved;
  const AddedTokenMatcher& matcher = parse_special ? normalized_all : normalized_plain;
  std::vector<AddedTokenMatcher::Segment> segments;
  if (matcher.empty()) {
    segments.push_back({0, normalized.size(), -1});
  } else {
    matcher.split(normalized, segments);
  }
  std::vector<Piece> pieces;
  for (const auto& seg : segments) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    if (seg.end == seg.begin) continue;  // HF drops empty splits before pre-tokenization
    pieces.clear();
    pieces.push_back(
        Piece{normalized.substr(seg.begin, seg.end - seg.begin), at_start && seg.begin == 0});
    for (const auto& p : pre_tokenizers) p->split(pieces);
    for (const Piece& p : pieces) model->tokenize(p.text, out);
  }
}

std::vector<int32_t> Tokenizer::Impl::encode(std::string_view text,
                                             const EncodeOptions& options) const {
  utf8::check_valid(text, "text to encode");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens) ids.insert(ids.end(), prefix_ids.begin(), prefix_ids.end());
  const AddedTokenMatcher& matcher = options.parse_special ? raw_all : raw_plain;
  if (matcher.empty()) {
    encode_text(text, true, options.parse_special, ids);
  } else {
    std::vector<AddedTokenMatcher::Segment> segments;
    matcher.split(text, segments);
    for (const auto& seg : segments) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
      } else {
        encode_text(text.substr(seg.begin, seg.end - seg.begin), seg.begin == 0,
                    options.parse_special, ids);
      }
    }
  }
  if (options.add_special_tokens) ids.insert(ids.end(), suffix_ids.begin(), suffix_ids.end());
  return ids;
}

namespace {
int byte_token_value(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int value = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = piece[k];
    const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}
}  // namespace

std::string Tokenizer::Impl::decode(const std::vector<int32_t>& ids,
                                    const DecodeOptions& options) const {
  if (llama2c_decode) {
    // llama2.c's decode(): a piece following BOS loses its leading space; "<0xXX>" is a raw byte.
    std::string bytes;
    int32_t prev = -1;
    for (int32_t id : ids) {
      const std::string& p = piece(id);
      const bool skip = options.skip_special_tokens && special[id];
      if (!skip) {
        const int byte = byte_token_value(p);
        if (byte >= 0) {
          bytes += static_cast<char>(byte);
        } else {
          bytes.append(p, (bos && prev == *bos && !p.empty() && p[0] == ' ') ? 1 : 0);
        }
      }
      prev = id;
    }
    return utf8::lossy(bytes);
  }
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string& p = piece(id);
    if (options.skip_special_tokens && special[id]) continue;
    tokens.push_back(p);
  }
  if (!has_decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
    return joined;
  }
  for (const auto& d : decoders) d->decode(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

// ---- Tokenizer ---------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  return impl_->encode(text, options);
}
std::string Tokenizer::decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const {
  return impl_->decode(ids, options);
}
TextStream::TextStream(const Tokenizer& tokenizer, std::vector<int32_t> prefix,
                       DecodeOptions options)
    : tokenizer_(tokenizer), ids_(std::move(prefix)), options_(options) {
  handed_out_ = text().size();
}

std::string TextStream::text() const {
  return tokenizer_.decode(ids_, options_);
}

namespace {
// Bytes at the end of `s` that may still change when more tokens arrive: U+FFFD characters
// (byte tokens not yet forming a character) and an incomplete UTF-8 sequence.
std::size_t unsettled_tail(const std::string& s) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::size_t end = s.size();
  // An incomplete sequence: a lead byte among the last 3 whose length runs past the end.
  for (std::size_t back = 1; back <= 3 && back <= end; ++back) {
    const auto b = static_cast<unsigned char>(s[end - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const std::size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (need > back) end -= back;
    break;
  }
  while (end >= kReplacement.size() &&
         s.compare(end - kReplacement.size(), kReplacement.size(), kReplacement) == 0)
    end -= kReplacement.size();
  return s.size() - end;
}
}  // namespace

std::string TextStream::push(int32_t id) {
  ids_.push_back(id);
  const std::string all = text();
  const std::size_t settled = all.size() - unsettled_tail(all);
  if (settled <= handed_out_) return "";
  std::string out = all.substr(handed_out_, settled - handed_out_);
  handed_out_ = settled;
  return out;
}

std::string TextStream::finish() {
  const std::string all = text();
  if (all.size() <= handed_out_) return "";
  std::string out = all.substr(handed_out_);
  handed_out_ = all.size();
  return out;
}

const std::string& Tokenizer::piece(int32_t id) const {
  return impl_->piece(id);
}
std::optional<int32_t> Tokenizer::find_piece(std::string_view piece) const {
  for (const AddedToken& t : impl_->added) {
    if (t.content == piece) return t.id;
  }
  const int32_t id = impl_->model->vocab().find(piece);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}
int64_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->vocab_size && impl_->special[id];
}
std::optional<int32_t> Tokenizer::bos_id() const {
  return impl_->bos;
}
std::optional<int32_t> Tokenizer::eos_id() const {
  return impl_->eos;
}
std::optional<int32_t> Tokenizer::pad_id() const {
  return impl_->pad;
}
std::optional<int32_t> Tokenizer::unk_id() const {
  return impl_->unk;
}
const std::string& Tokenizer::description() const {
  return impl_->description;
}
const std::string& Tokenizer::source_path() const {
  return impl_->source_path;
}

}  // namespace npeff::tokenizer
