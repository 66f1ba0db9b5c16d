#include "npeff/analysis/examples.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <set>

#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/schema.h"
#include "npeff/model/loader.h"
#include "npeff/task/predict.h"
#include "npeff/tokenizer/tokenizer.h"

namespace npeff::analysis {
namespace {

std::vector<std::int64_t> read_ids(const io::Group& root, const std::string& name, std::int64_t m) {
  const io::Dataset ds = root.dataset(name);
  ds.expect(io::DType::kInt64, {m});
  std::vector<std::int64_t> v(static_cast<size_t>(m));
  ds.read(v.data());
  return v;
}

void append(std::vector<std::int64_t>& to, const std::vector<std::int64_t>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// `text` in double quotes, with quotes, backslashes and control characters escaped as in JSON
// (a token's leading space or newline stays visible).
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

bool ExampleTable::has_labels() const {
  for (const std::int64_t l : labels)
    if (l >= 0) return true;
  return false;
}

std::string ExampleTable::label_text(std::int64_t value) const {
  if (value < 0) return "-";
  if (!vocab && value < static_cast<std::int64_t>(label_names.size()))
    return label_names[static_cast<size_t>(value)];
  const auto it = tokens.text.find(value);
  if (vocab && it != tokens.text.end())
    return quoted(it->second) + " (token " + std::to_string(value) + ")";
  return "token " + std::to_string(value);
}

std::int64_t ExampleTable::row_of(std::int64_t id) const {
  const auto it = index_.find(id);
  return it == index_.end() ? -1 : it->second;
}

void ExampleTable::index_ids() {
  index_.clear();
  for (size_t i = 0; i < example_ids.size(); ++i) {
    const bool fresh = index_.emplace(example_ids[i], static_cast<std::int64_t>(i)).second;
    NPEFF_CHECK(fresh, "example id ", example_ids[i], " occurs twice in ",
                sources.empty() ? std::string("the example table") : sources.front(),
                sources.size() > 1 ? " (and the files read with it)" : "");
  }
}

ExampleTable read_example_table(const std::vector<std::string>& paths) {
  NPEFF_CHECK(!paths.empty(), "no PEF or prediction file given for the example facts");
  ExampleTable t;
  for (const std::string& path : paths) {
    const io::File f = io::File::open(path);
    const io::SchemaId schema = io::read_schema(f);
    const bool pefs = schema.name == io::kPefSchema;
    NPEFF_CHECK(pefs || schema.name == task::kPredictionsSchema, path, " is an ", schema.name,
                " file; expected npeff.pefs (compute-pefs) or npeff.predictions (predict)");
    const std::int64_t version =
        pefs ? (io::expect_schema(f, schema.name, io::kPefSchemaVersion), io::kPefSchemaVersion)
             : io::expect_schema_versions(f, schema.name, 1, task::kPredictionsSchemaVersion);
    // npeff.predictions version 1 kept the gold labels in /label and the label names in /labels;
    // since version 2 both schemas use /labels and /label_names.
    const bool v1_predictions = !pefs && version == 1;
    const std::string label_ds = v1_predictions ? "label" : "labels";
    const std::string names_ds = v1_predictions ? "labels" : "label_names";
    const io::Group& root = f.root();
    NPEFF_CHECK(root.has("prediction"), path,
                " has no /prediction dataset (not written by compute-pefs or predict)");
    const std::int64_t m = root.dataset("example_ids").shape().at(0);
    append(t.example_ids, read_ids(root, "example_ids", m));
    append(t.predictions, read_ids(root, "prediction", m));
    if (root.has(label_ds))
      append(t.labels, read_ids(root, label_ds, m));
    else
      t.labels.insert(t.labels.end(), static_cast<size_t>(m), -1);
    if (root.has("prompts")) {
      const std::vector<std::string> p = root.dataset("prompts").read_strings();
      NPEFF_CHECK(static_cast<std::int64_t>(p.size()) == m, path, ":/prompts has ", p.size(),
                  " entries, expected ", m);
      t.prompts.insert(t.prompts.end(), p.begin(), p.end());
    } else {
      t.prompts.insert(t.prompts.end(), static_cast<size_t>(m), std::string());
    }
    // /top_ids is written for vocabulary tasks only; their predictions are token ids, and label
    // names (written by older versions when the task config had "labels") mean nothing.
    const bool vocab = root.has("top_ids");
    std::vector<std::string> names;
    if (root.has(names_ds) && !vocab) names = root.dataset(names_ds).read_strings();
    if (t.sources.empty()) {
      t.label_names = names;
      t.vocab = vocab;
    } else {
      NPEFF_CHECK(names == t.label_names && vocab == t.vocab, path, " has other label names than ",
                  t.sources.front(), ": the files come from different tasks");
    }
    t.sources.push_back(path);
  }
  t.index_ids();
  return t;
}

void decode_tokens(ExampleTable& table, const tokenizer::Tokenizer& tok,
                   const std::string& source) {
  if (!table.vocabulary()) return;
  std::set<std::int64_t> ids;
  for (const auto* v : {&table.labels, &table.predictions})
    for (const std::int64_t id : *v)
      if (id >= 0) ids.insert(id);
  table.tokens = TokenTexts{};
  table.tokens.tokenizer = source;
  std::int64_t outside = 0, first_outside = -1;
  for (const std::int64_t id : ids) {
    if (id < tok.vocab_size()) {
      try {
        table.tokens.text[id] = tok.decode({static_cast<std::int32_t>(id)});
        continue;
      } catch (const Error&) {  // a hole in an HF vocabulary
      }
    }
    if (outside++ == 0) first_outside = id;
  }
  if (outside > 0)
    table.tokens.note = std::to_string(outside) + " of " + std::to_string(ids.size()) +
                        " token ids (e.g. " + std::to_string(first_outside) +
                        ") are not in the vocabulary of " + source + ": shown as \"token N\"";
}

void decode_vocabulary(ExampleTable& table, const std::string& tokenizer_path) {
  if (!table.vocabulary() || table.sources.empty()) return;
  if (!tokenizer_path.empty()) {
    decode_tokens(table, tokenizer::load_tokenizer(tokenizer_path), tokenizer_path);
    return;
  }
  namespace fs = std::filesystem;
  const std::string& file = table.sources.front();
  // Paths are recorded as given, relative to the directory the command ran in; also try them
  // next to the file.
  const auto locate = [&](const std::string& p) {
    if (p.empty() || fs::path(p).is_absolute() || fs::exists(p)) return p;
    const fs::path beside = fs::path(file).parent_path() / p;
    return fs::exists(beside) ? beside.string() : p;
  };
  std::string why;
  try {
    const nlohmann::json prov = io::read_provenance(io::File::open(file));
    const auto recorded = [&](const char* key) {
      return prov.contains(key) && prov[key].is_string() ? prov[key].get<std::string>() : "";
    };
    const std::string model = locate(recorded("model")), tok = locate(recorded("tokenizer"));
    if (model.empty() && tok.empty()) {
      why = file + "'s provenance records no model or tokenizer";
    } else if (auto t = model::load_model_tokenizer(model, tok)) {
      decode_tokens(table, *t, tok.empty() ? t->source_path() : tok);
      return;
    } else {
      why = "the model " + model + " has no tokenizer of its own";
    }
  } catch (const Error& e) {
    why = e.what();
  }
  table.tokens = TokenTexts{};
  table.tokens.note = "token ids are shown as \"token N\": the tokenizer is unavailable (" + why +
                      "); give one with tune-report --tokenizer";
  log::warn(table.tokens.note);
}

ExampleTable select_examples(const ExampleTable& table, const std::vector<std::int64_t>& ids,
                             const std::string& what) {
  ExampleTable out;
  out.label_names = table.label_names;
  out.vocab = table.vocab;
  out.sources = table.sources;
  out.tokens = table.tokens;
  for (const std::int64_t id : ids) {
    const std::int64_t row = table.row_of(id);
    NPEFF_CHECK(row >= 0, what, " has example id ", id, " but ", table.sources.front(),
                table.sources.size() > 1 ? " (and the other files given)" : "",
                " has no such example: pass the PEF files the decomposition was made from");
    const auto r = static_cast<size_t>(row);
    out.example_ids.push_back(id);
    out.labels.push_back(table.labels[r]);
    out.predictions.push_back(table.predictions[r]);
    out.prompts.push_back(table.prompts[r]);
  }
  out.index_ids();
  return out;
}

}  // namespace npeff::analysis
