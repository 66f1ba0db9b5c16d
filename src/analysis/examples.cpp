#include "npeff/analysis/examples.h"

#include "npeff/core/error.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"

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

}  // namespace

bool ExampleTable::has_labels() const {
  for (const std::int64_t l : labels)
    if (l >= 0) return true;
  return false;
}

std::string ExampleTable::label_text(std::int64_t value) const {
  if (value < 0) return "-";
  if (!label_names.empty() && value < static_cast<std::int64_t>(label_names.size()))
    return label_names[static_cast<size_t>(value)];
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
    const bool pefs = schema.name == "npeff.pefs";
    NPEFF_CHECK(pefs || schema.name == "npeff.predictions", path, " is an ", schema.name,
                " file; expected npeff.pefs (compute-pefs) or npeff.predictions (predict)");
    io::expect_schema(f, schema.name, 1);
    const io::Group& root = f.root();
    NPEFF_CHECK(root.has("prediction"), path,
                " has no /prediction dataset (not written by compute-pefs or predict)");
    const std::int64_t m = root.dataset("example_ids").shape().at(0);
    append(t.example_ids, read_ids(root, "example_ids", m));
    append(t.predictions, read_ids(root, "prediction", m));
    const std::string label_ds = pefs ? "labels" : "label";
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
    const std::string names_ds = pefs ? "label_names" : "labels";
    std::vector<std::string> names;
    if (root.has(names_ds)) names = root.dataset(names_ds).read_strings();
    if (t.sources.empty())
      t.label_names = names;
    else
      NPEFF_CHECK(names == t.label_names, path, " has other label names than ", t.sources.front(),
                  ": the files come from different tasks");
    t.sources.push_back(path);
  }
  t.index_ids();
  return t;
}

ExampleTable select_examples(const ExampleTable& table, const std::vector<std::int64_t>& ids,
                             const std::string& what) {
  ExampleTable out;
  out.label_names = table.label_names;
  out.sources = table.sources;
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
