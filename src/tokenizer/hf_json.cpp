// Hugging Face `tokenizer.json` (tokenizers' serialisation) -> pipeline. Every component type is
// matched by name; anything not implemented is refused with the JSON path that names it.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/utf8.h"

namespace npeff::tokenizer {

namespace {
using json = nlohmann::json;

// Field access that turns every shape problem into npeff::Error naming the JSON path.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  const json& field(const json& obj, const std::string& key, const std::string& path) const {
    NPEFF_CHECK(obj.is_object(), source_, ": ", path, " must be a JSON object, found ",
                obj.type_name());
    const auto it = obj.find(key);
    NPEFF_CHECK(it != obj.end(), source_, ": ", path, ".", key, " is missing");
    return *it;
  }
  const json* optional(const json& obj, const std::string& key) const {
    if (!obj.is_object()) return nullptr;
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  std::string string(const json& v, const std::string& path) const {
    NPEFF_CHECK(v.is_string(), source_, ": ", path, " must be a string, found ", v.type_name());
    std::string s = v.get<std::string>();
    utf8::check_valid(s, source_ + ": " + path);
    return s;
  }
  std::string string_field(const json& obj, const std::string& key, const std::string& path) const {
    return string(field(obj, key, path), path + "." + key);
  }
  bool bool_field(const json& obj, const std::string& key, bool fallback) const {
    const json* v = optional(obj, key);
    if (v == nullptr) return fallback;
    NPEFF_CHECK(v->is_boolean(), source_, ": ", key, " must be true or false, found ",
                v->type_name());
    return v->get<bool>();
  }
  int64_t int_value(const json& v, const std::string& path) const {
    NPEFF_CHECK(v.is_number_integer(), source_, ": ", path, " must be an integer, found ",
                v.type_name());
    return v.get<int64_t>();
  }
  const json& array(const json& v, const std::string& path) const {
    NPEFF_CHECK(v.is_array(), source_, ": ", path, " must be an array, found ", v.type_name());
    return v;
  }
  std::string type_of(const json& obj, const std::string& path) const {
    return string_field(obj, "type", path);
  }
  // `kind` names the component family ("normalizer"), `path` where in the file it is.
  [[noreturn]] void unsupported(const std::string& kind, const std::string& path,
                                const std::string& type, const std::string& supported) const {
    NPEFF_FAIL(source_, ": ", path, ": ", kind, " type '", type,
               "' is not supported by npeff (supported ", kind, " types: ", supported, ")");
  }
  Pattern pattern(const json& obj, const std::string& path) const {
    const json& p = field(obj, "pattern", path);
    Pattern out;
    if (const json* s = optional(p, "String")) {
      out.literal = string(*s, path + ".pattern.String");
    } else if (const json* r = optional(p, "Regex")) {
      out.regex = std::make_shared<Regex>(string(*r, path + ".pattern.Regex"));
    } else {
      NPEFF_FAIL(source_, ": ", path, ".pattern must be {\"String\": ...} or {\"Regex\": ...}");
    }
    return out;
  }
  PrependScheme prepend_scheme(const json& obj, const std::string& path) const {
    PrependScheme scheme = PrependScheme::kAlways;
    if (const json* s = optional(obj, "prepend_scheme")) {
      const std::string name = string(*s, path + ".prepend_scheme");
      if (name == "always")
        scheme = PrependScheme::kAlways;
      else if (name == "first")
        scheme = PrependScheme::kFirst;
      else if (name == "never")
        scheme = PrependScheme::kNever;
      else
        NPEFF_FAIL(source_, ": ", path, ".prepend_scheme '", name,
                   "' is not one of always, first, never");
    }
    if (!bool_field(obj, "add_prefix_space", true)) scheme = PrependScheme::kNever;  // legacy
    return scheme;
  }
  std::string single_char(const json& obj, const std::string& key, const std::string& path) const {
    std::string s = string_field(obj, key, path);
    NPEFF_CHECK(!s.empty() && utf8::sequence_length(static_cast<unsigned char>(s[0])) == s.size(),
                source_, ": ", path, ".", key, " must be a single character, found '", s, "'");
    return s;
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

void add_normalizer(const Reader& r, const json& n, const std::string& path,
                    Tokenizer::Impl& impl) {
  const std::string type = r.type_of(n, path);
  if (type == "Sequence") {
    const json& list = r.array(r.field(n, "normalizers", path), path + ".normalizers");
    for (size_t i = 0; i < list.size(); ++i) {
      add_normalizer(r, list[i], path + ".normalizers[" + std::to_string(i) + "]", impl);
    }
  } else if (type == "Prepend") {
    impl.normalizers.push_back(make_prepend_normalizer(r.string_field(n, "prepend", path)));
  } else if (type == "Replace") {
    impl.normalizers.push_back(
        make_replace_normalizer(r.pattern(n, path), r.string_field(n, "content", path)));
  } else if (type == "NFC") {
    impl.normalizers.push_back(make_unicode_normalizer(UnicodeForm::kNFC));
  } else if (type == "NFD") {
    impl.normalizers.push_back(make_unicode_normalizer(UnicodeForm::kNFD));
  } else if (type == "NFKC") {
    impl.normalizers.push_back(make_unicode_normalizer(UnicodeForm::kNFKC));
  } else if (type == "NFKD") {
    impl.normalizers.push_back(make_unicode_normalizer(UnicodeForm::kNFKD));
  } else if (type == "Lowercase") {
    impl.normalizers.push_back(make_lowercase_normalizer());
  } else if (type == "Strip") {
    impl.normalizers.push_back(make_strip_normalizer(r.bool_field(n, "strip_left", true),
                                                     r.bool_field(n, "strip_right", true)));
  } else if (type == "StripAccents") {
    impl.normalizers.push_back(make_strip_accents_normalizer());
  } else if (type == "Nmt") {
    impl.normalizers.push_back(make_nmt_normalizer());
  } else if (type == "ByteLevel") {
    impl.normalizers.push_back(make_byte_level_normalizer());
  } else if (type == "BertNormalizer") {
    BertNormalizerOptions o;
    o.clean_text = r.bool_field(n, "clean_text", true);
    o.handle_chinese_chars = r.bool_field(n, "handle_chinese_chars", true);
    o.lowercase = r.bool_field(n, "lowercase", true);
    o.strip_accents = r.bool_field(n, "strip_accents", o.lowercase);  // null: as lowercase
    impl.normalizers.push_back(make_bert_normalizer(o));
  } else {
    r.unsupported("normalizer", path, type,
                  "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                  "StripAccents, Nmt, ByteLevel, BertNormalizer");
  }
}

void add_pre_tokenizer(const Reader& r, const json& p, const std::string& path,
                       Tokenizer::Impl& impl) {
  const std::string type = r.type_of(p, path);
  if (type == "Sequence") {
    const json& list = r.array(r.field(p, "pretokenizers", path), path + ".pretokenizers");
    for (size_t i = 0; i < list.size(); ++i) {
      add_pre_tokenizer(r, list[i], path + ".pretokenizers[" + std::to_string(i) + "]", impl);
    }
  } else if (type == "ByteLevel") {
    impl.pre_tokenizers.push_back(make_byte_level_pre_tokenizer(
        r.bool_field(p, "add_prefix_space", true), r.bool_field(p, "use_regex", true)));
  } else if (type == "Split") {
    const SplitBehavior behavior = parse_split_behavior(r.string_field(p, "behavior", path));
    impl.pre_tokenizers.push_back(
        make_split_pre_tokenizer(r.pattern(p, path), behavior, r.bool_field(p, "invert", false)));
  } else if (type == "Digits") {
    impl.pre_tokenizers.push_back(
        make_digits_pre_tokenizer(r.bool_field(p, "individual_digits", false)));
  } else if (type == "Metaspace") {
    impl.pre_tokenizers.push_back(
        make_metaspace_pre_tokenizer(r.single_char(p, "replacement", path),
                                     r.prepend_scheme(p, path), r.bool_field(p, "split", true)));
  } else if (type == "Whitespace") {
    impl.pre_tokenizers.push_back(make_whitespace_pre_tokenizer());
  } else if (type == "WhitespaceSplit") {
    impl.pre_tokenizers.push_back(make_whitespace_split_pre_tokenizer());
  } else if (type == "Punctuation") {
    const json* b = r.optional(p, "behavior");
    impl.pre_tokenizers.push_back(make_punctuation_pre_tokenizer(
        b ? parse_split_behavior(r.string(*b, path + ".behavior")) : SplitBehavior::kIsolated));
  } else if (type == "CharDelimiterSplit") {
    const std::string d = r.single_char(p, "delimiter", path);
    impl.pre_tokenizers.push_back(make_char_delimiter_pre_tokenizer(utf8::decode_at(d, 0)));
  } else if (type == "BertPreTokenizer") {
    impl.pre_tokenizers.push_back(make_bert_pre_tokenizer());
  } else if (type == "FixedLength") {
    int64_t length = 5;  // tokenizers' default
    if (const json* l = r.optional(p, "length")) length = r.int_value(*l, path + ".length");
    NPEFF_CHECK(length > 0, r.source(), ": ", path, ".length must be at least 1, found ", length);
    impl.pre_tokenizers.push_back(make_fixed_length_pre_tokenizer(static_cast<size_t>(length)));
  } else {
    r.unsupported("pre_tokenizer", path, type,
                  "Sequence, ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit, "
                  "Punctuation, CharDelimiterSplit, BertPreTokenizer, FixedLength");
  }
}

void add_decoder(const Reader& r, const json& d, const std::string& path, Tokenizer::Impl& impl) {
  const std::string type = r.type_of(d, path);
  if (type == "Sequence") {
    const json& list = r.array(r.field(d, "decoders", path), path + ".decoders");
    for (size_t i = 0; i < list.size(); ++i) {
      add_decoder(r, list[i], path + ".decoders[" + std::to_string(i) + "]", impl);
    }
  } else if (type == "ByteLevel") {
    impl.decoders.push_back(make_byte_level_decoder());
  } else if (type == "Metaspace") {
    impl.decoders.push_back(
        make_metaspace_decoder(r.single_char(d, "replacement", path), r.prepend_scheme(d, path)));
  } else if (type == "ByteFallback") {
    impl.decoders.push_back(make_byte_fallback_decoder());
  } else if (type == "Fuse") {
    impl.decoders.push_back(make_fuse_decoder());
  } else if (type == "Strip") {
    const int64_t start = r.int_value(r.field(d, "start", path), path + ".start");
    const int64_t stop = r.int_value(r.field(d, "stop", path), path + ".stop");
    NPEFF_CHECK(start >= 0 && stop >= 0, r.source(), ": ", path, ".start/stop must be >= 0");
    impl.decoders.push_back(make_strip_decoder(
        r.single_char(d, "content", path), static_cast<size_t>(start), static_cast<size_t>(stop)));
  } else if (type == "Replace") {
    impl.decoders.push_back(
        make_replace_decoder(r.pattern(d, path), r.string_field(d, "content", path)));
  } else {
    r.unsupported("decoder", path, type,
                  "Sequence, ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace");
  }
}

// Ids of a special token named by a post-processor, looked up in its own table or the vocab.
std::vector<int32_t> special_ids(const Reader& r, const json* table, const std::string& name,
                                 const Tokenizer::Impl& impl, const std::string& path) {
  if (table != nullptr) {
    if (const json* entry = r.optional(*table, name)) {
      std::vector<int32_t> ids;
      for (const json& id : r.array(r.field(*entry, "ids", path), path + ".ids")) {
        ids.push_back(static_cast<int32_t>(r.int_value(id, path + ".ids[]")));
      }
      return ids;
    }
  }
  for (const AddedToken& t : impl.added) {
    if (t.content == name) return {t.id};
  }
  const int32_t id = impl.model->vocab().find(name);
  NPEFF_CHECK(id >= 0, r.source(), ": ", path, " names special token '", name,
              "', which is neither in special_tokens nor in the vocabulary");
  return {id};
}

void add_post_processor(const Reader& r, const json& p, const std::string& path,
                        Tokenizer::Impl& impl) {
  const std::string type = r.type_of(p, path);
  if (type == "Sequence") {
    const json& list = r.array(r.field(p, "processors", path), path + ".processors");
    for (size_t i = 0; i < list.size(); ++i) {
      add_post_processor(r, list[i], path + ".processors[" + std::to_string(i) + "]", impl);
    }
  } else if (type == "ByteLevel") {
    // Only adjusts offsets: the ids are unchanged.
  } else if (type == "TemplateProcessing") {
    NPEFF_CHECK(impl.prefix_ids.empty() && impl.suffix_ids.empty(), r.source(), ": ", path,
                ": more than one post-processor adds tokens");
    const json* table = r.optional(p, "special_tokens");
    bool seen_sequence = false;
    const json& single = r.array(r.field(p, "single", path), path + ".single");
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string item_path = path + ".single[" + std::to_string(i) + "]";
      if (const json* seq = r.optional(single[i], "Sequence")) {
        const std::string id = r.string_field(*seq, "id", item_path + ".Sequence");
        NPEFF_CHECK(id == "A" && !seen_sequence, r.source(), ": ", item_path,
                    ": a single-sequence template must contain sequence A once");
        seen_sequence = true;
      } else if (const json* tok = r.optional(single[i], "SpecialToken")) {
        const std::string name = r.string_field(*tok, "id", item_path + ".SpecialToken");
        const std::vector<int32_t> ids = special_ids(r, table, name, impl, item_path);
        auto& target = seen_sequence ? impl.suffix_ids : impl.prefix_ids;
        target.insert(target.end(), ids.begin(), ids.end());
      } else {
        NPEFF_FAIL(r.source(), ": ", item_path,
                   " must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    NPEFF_CHECK(seen_sequence, r.source(), ": ", path, ".single has no sequence A");
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    for (const char* key : {"cls", "sep"}) {
      const json& pair = r.array(r.field(p, key, path), path + "." + key);
      NPEFF_CHECK(pair.size() == 2, r.source(), ": ", path, ".", key, " must be [token, id]");
      const int32_t id = static_cast<int32_t>(r.int_value(pair[1], path + "." + key + "[1]"));
      (std::string(key) == "cls" ? impl.prefix_ids : impl.suffix_ids).push_back(id);
    }
  } else {
    r.unsupported("post_processor", path, type,
                  "Sequence, ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing");
  }
}

std::unique_ptr<Model> read_model(const Reader& r, const json& m) {
  std::string type = "BPE";
  if (r.optional(m, "type")) type = r.type_of(m, "model");
  if (type != "BPE") r.unsupported("model", "model", type, "BPE");
  if (const json* d = r.optional(m, "dropout")) {
    NPEFF_CHECK(d->is_number() && d->get<double>() == 0.0, r.source(),
                ": model.dropout is set; BPE dropout is random and not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const json* v = r.optional(m, key)) {
      NPEFF_CHECK(r.string(*v, std::string("model.") + key).empty(), r.source(), ": model.", key,
                  " is set; word-piece style BPE affixes are not supported");
    }
  }
  const json& vocab = r.field(m, "vocab", "model");
  NPEFF_CHECK(vocab.is_object(), r.source(), ": model.vocab must be an object {token: id}");
  std::vector<std::pair<std::string, int64_t>> entries;
  entries.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    utf8::check_valid(it.key(), r.source() + ": model.vocab key");
    entries.emplace_back(it.key(), r.int_value(it.value(), "model.vocab[\"" + it.key() + "\"]"));
  }
  std::vector<std::pair<std::string, std::string>> merges;
  const json& list = r.array(r.field(m, "merges", "model"), "model.merges");
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = "model.merges[" + std::to_string(i) + "]";
    if (list[i].is_string()) {  // "a b" (tokenizers < 0.20)
      const std::string s = r.string(list[i], path);
      const size_t space = s.find(' ');
      NPEFF_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                  r.source(), ": ", path, " '", s, "' must be two tokens separated by one space");
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else {
      const json& pair = r.array(list[i], path);
      NPEFF_CHECK(pair.size() == 2, r.source(), ": ", path, " must have two tokens, found ",
                  pair.size());
      merges.emplace_back(r.string(pair[0], path + "[0]"), r.string(pair[1], path + "[1]"));
    }
  }
  BpeModel::Options options;
  if (const json* unk = r.optional(m, "unk_token"))
    options.unk_token = r.string(*unk, "model.unk_token");
  options.fuse_unk = r.bool_field(m, "fuse_unk", false);
  options.byte_fallback = r.bool_field(m, "byte_fallback", false);
  options.ignore_merges = r.bool_field(m, "ignore_merges", false);
  return std::make_unique<BpeModel>(std::move(entries), merges, options, r.source() + ": model");
}

// bos/eos/pad names from tokenizer_config.json next to tokenizer.json, when there is one.
void read_tokenizer_config(const std::string& json_path, Tokenizer::Impl& impl) {
  const size_t slash = json_path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : json_path.substr(0, slash);
  std::ifstream in(dir + "/tokenizer_config.json");
  if (!in) return;
  json config = json::parse(in, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    log::warn(dir, "/tokenizer_config.json is not a JSON object; special tokens not read from it");
    return;
  }
  const auto lookup = [&](const char* key) -> std::optional<int32_t> {
    const auto it = config.find(key);
    if (it == config.end()) return std::nullopt;
    std::string name;
    if (it->is_string())
      name = it->get<std::string>();
    else if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
      name = (*it)["content"].get<std::string>();
    else
      return std::nullopt;
    for (const AddedToken& t : impl.added) {
      if (t.content == name) return t.id;
    }
    const int32_t id = impl.model->vocab().find(name);
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  };
  if (auto id = lookup("bos_token")) impl.bos = id;
  if (auto id = lookup("eos_token")) impl.eos = id;
  if (auto id = lookup("pad_token")) impl.pad = id;
}

// Everything but finalize(): the file loader adds tokenizer_config.json's names first.
std::unique_ptr<Tokenizer::Impl> parse_tokenizer_json(std::string_view text,
                                                      const std::string& name) {
  json root = json::parse(text.begin(), text.end(), nullptr, false);
  NPEFF_CHECK(!root.is_discarded(), name, ": not valid JSON");
  NPEFF_CHECK(root.is_object(), name, ": a tokenizer.json must be a JSON object, found ",
              root.type_name());
  const Reader r(name);
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->source_path = name;
  try {
    impl->model = read_model(r, r.field(root, "model", "(root)"));
    if (const json* added = r.optional(root, "added_tokens")) {
      const json& list = r.array(*added, "added_tokens");
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string path = "added_tokens[" + std::to_string(i) + "]";
        AddedToken t;
        t.id = static_cast<int32_t>(r.int_value(r.field(list[i], "id", path), path + ".id"));
        NPEFF_CHECK(t.id >= 0 && t.id < (1 << 24), name, ": ", path, ".id ", t.id, " out of range");
        t.content = r.string_field(list[i], "content", path);
        t.special = r.bool_field(list[i], "special", false);
        t.lstrip = r.bool_field(list[i], "lstrip", false);
        t.rstrip = r.bool_field(list[i], "rstrip", false);
        t.normalized = r.bool_field(list[i], "normalized", !t.special);
        NPEFF_CHECK(!r.bool_field(list[i], "single_word", false), name, ": ", path, " ('",
                    t.content, "') sets single_word, which npeff does not support");
        impl->added.push_back(std::move(t));
      }
    }
    if (const json* n = r.optional(root, "normalizer")) add_normalizer(r, *n, "normalizer", *impl);
    // Added tokens matched after normalisation are compared with their normalised content.
    for (AddedToken& t : impl->added) {
      if (t.normalized) {
        t.match = t.content;
        for (const auto& n : impl->normalizers) n->normalize(t.match);
      }
    }
    if (const json* p = r.optional(root, "pre_tokenizer")) {
      add_pre_tokenizer(r, *p, "pre_tokenizer", *impl);
    }
    if (const json* d = r.optional(root, "decoder")) {
      impl->has_decoder = true;
      add_decoder(r, *d, "decoder", *impl);
    }
    if (const json* p = r.optional(root, "post_processor")) {
      add_post_processor(r, *p, "post_processor", *impl);
    }
  } catch (const nlohmann::json::exception& e) {
    NPEFF_FAIL(name, ": malformed tokenizer.json (", e.what(), ")");
  }
  if (const json* m = r.optional(root["model"], "unk_token")) {
    impl->unk = impl->model->vocab().find(m->get<std::string>());
  }
  if (!impl->prefix_ids.empty()) impl->bos = impl->prefix_ids.front();
  if (!impl->suffix_ids.empty()) impl->eos = impl->suffix_ids.back();
  impl->description = "tokenizer.json: BPE, " + std::to_string(impl->model->vocab().count()) +
                      " tokens, " + std::to_string(impl->added.size()) + " added tokens";
  return impl;
}
}  // namespace

Tokenizer load_hf_tokenizer_json_text(std::string_view text, const std::string& name) {
  auto impl = parse_tokenizer_json(text, name);
  impl->finalize();
  return Tokenizer(std::move(impl));
}

Tokenizer load_hf_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NPEFF_CHECK(in.good(), "cannot open tokenizer file ", path);
  std::ostringstream text;
  text << in.rdbuf();
  auto impl = parse_tokenizer_json(text.str(), path);
  read_tokenizer_config(path, *impl);
  impl->finalize();
  return Tokenizer(std::move(impl));
}

}  // namespace npeff::tokenizer
