#include "npeff/task/task.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "npeff/core/error.h"
#include "npeff/core/paths.h"

namespace npeff::task {

namespace {
using json = nlohmann::json;

std::set<std::string> placeholders(const std::string& tmpl, const std::string& source) {
  std::set<std::string> names;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      ++i;
    } else if (tmpl[i] == '{') {
      const size_t close = tmpl.find('}', i);
      NPEFF_CHECK(close != std::string::npos, source, ": template has an unclosed '{' at ", i);
      names.insert(tmpl.substr(i + 1, close - i - 1));
      i = close;
    }
  }
  return names;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  NPEFF_CHECK(in.good(), "cannot open ", what, " ", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return v.dump();
}
}  // namespace

const char* task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::kLabelTokens:
      return "label-tokens";
    case TaskKind::kSuffixes:
      return "suffixes";
    case TaskKind::kVocab:
      return "vocab";
  }
  return "?";
}

std::string fill_template(const std::string& tmpl, const std::map<std::string, std::string>& values,
                          const std::string& source) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {
      out += c;
      ++i;
    } else if (c == '{') {
      const size_t close = tmpl.find('}', i);
      NPEFF_CHECK(close != std::string::npos, source, ": template has an unclosed '{'");
      const std::string name = tmpl.substr(i + 1, close - i - 1);
      const auto it = values.find(name);
      NPEFF_CHECK(it != values.end(), source, ": no value for template placeholder {", name, "}");
      out += it->second;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

Task Task::from_json_text(const std::string& text, const std::string& source,
                          const std::string& base_dir) {
  const json j = json::parse(text, nullptr, false);
  NPEFF_CHECK(!j.is_discarded() && j.is_object(), source, ": a task config must be a JSON object");
  Task t;
  try {
    t.name = j.value("name", std::string("task"));
    const std::string kind = j.at("kind").get<std::string>();
    if (kind == "label-tokens")
      t.kind = TaskKind::kLabelTokens;
    else if (kind == "suffixes")
      t.kind = TaskKind::kSuffixes;
    else if (kind == "vocab")
      t.kind = TaskKind::kVocab;
    else
      NPEFF_FAIL(source, ": kind '", kind, "' is not one of label-tokens, suffixes, vocab");
    t.prompt_template = j.at("template").get<std::string>();
    t.label_prefix = j.value("label_prefix", std::string(" "));
    if (j.contains("labels")) t.labels = j.at("labels").get<std::vector<std::string>>();
    const json& d = j.at("data");
    t.data.format = d.at("format").get<std::string>();
    t.data.path = resolve_path(d.at("path").get<std::string>(), base_dir);
    t.data.split = d.value("split", std::string());
    for (const auto& [k, v] : d.at("fields").items()) t.data.fields[k] = value_text(v);
    if (d.contains("label_field") && !d.at("label_field").is_null()) {
      t.data.label_field = value_text(d.at("label_field"));
    }
    if (d.contains("label_names")) {
      for (const auto& [k, v] : d.at("label_names").items())
        t.data.label_names[k] = v.get<std::string>();
    }
  } catch (const json::exception& e) {
    NPEFF_FAIL(source, ": malformed task config (", e.what(), ")");
  }
  NPEFF_CHECK(t.data.format == "tsv" || t.data.format == "jsonl" || t.data.format == "json-pairs",
              source, ": data.format '", t.data.format, "' is not one of tsv, jsonl, json-pairs");
  NPEFF_CHECK(t.data.format != "json-pairs" || !t.data.split.empty(), source,
              ": data.split is required for json-pairs data");
  const std::set<std::string> used = placeholders(t.prompt_template, source);
  NPEFF_CHECK(!used.empty(), source, ": template '", t.prompt_template,
              "' has no {placeholder} for the example text");
  for (const std::string& p : used) {
    NPEFF_CHECK(t.data.fields.count(p), source, ": template placeholder {", p,
                "} has no entry in data.fields");
  }
  NPEFF_CHECK(t.kind != TaskKind::kVocab || t.data.label_field.empty(), source,
              ": a vocab task has no label set; remove data.label_field");
  if (t.kind != TaskKind::kVocab) {
    NPEFF_CHECK(t.labels.size() >= 2, source, ": a ", task_kind_name(t.kind),
                " task needs at least 2 labels");
    const std::set<std::string> unique(t.labels.begin(), t.labels.end());
    NPEFF_CHECK(unique.size() == t.labels.size(), source, ": labels repeat");
  }
  return t;
}

Task Task::load(const std::string& path) {
  return from_json_text(read_file(path, "task config"), path, folder_of(path));
}

std::string Task::to_json() const {
  json d = {{"format", data.format},
            {"path", data.path},
            {"fields", data.fields},
            {"label_field", data.label_field},
            {"label_names", data.label_names}};
  if (!data.split.empty()) d["split"] = data.split;
  return json({{"name", name},
               {"kind", task_kind_name(kind)},
               {"template", prompt_template},
               {"labels", labels},
               {"label_prefix", label_prefix},
               {"data", d}})
      .dump();
}

std::vector<Example> load_examples(const Task& task, int64_t start, int64_t count) {
  const DataSource& d = task.data;
  const std::string text = read_file(d.path, "data file");
  std::vector<std::map<std::string, std::string>> rows;  // field -> value, in file order
  std::vector<std::string> where;
  if (d.format == "tsv") {
    std::istringstream in(text);
    std::string line;
    NPEFF_CHECK(std::getline(in, line), d.path, ": empty TSV file (expected a header line)");
    std::vector<std::string> header;
    const auto split = [](const std::string& l) {
      std::vector<std::string> cols;
      std::string cell;
      std::istringstream s(l);
      while (std::getline(s, cell, '\t')) cols.push_back(cell);
      if (!l.empty() && l.back() == '\t') cols.emplace_back();
      return cols;
    };
    if (!line.empty() && line.back() == '\r') line.pop_back();
    header = split(line);
    int64_t n = 1;
    while (std::getline(in, line)) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const std::vector<std::string> cols = split(line);
      NPEFF_CHECK(cols.size() == header.size(), d.path, ":", n, ": ", cols.size(),
                  " columns, the header has ", header.size());
      std::map<std::string, std::string> row;
      for (size_t c = 0; c < cols.size(); ++c) row[header[c]] = cols[c];
      rows.push_back(std::move(row));
      where.push_back(d.path + ":" + std::to_string(n));
    }
  } else if (d.format == "jsonl") {
    std::istringstream in(text);
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const json j = json::parse(line, nullptr, false);
      NPEFF_CHECK(!j.is_discarded() && j.is_object(), d.path, ":", n, ": not a JSON object");
      std::map<std::string, std::string> row;
      for (const auto& [k, v] : j.items()) {
        if (!v.is_null()) row[k] = value_text(v);
      }
      rows.push_back(std::move(row));
      where.push_back(d.path + ":" + std::to_string(n));
    }
  } else {  // json-pairs
    const json j = json::parse(text, nullptr, false);
    NPEFF_CHECK(!j.is_discarded() && j.is_object() && j.contains(d.split) && j[d.split].is_array(),
                d.path, ": expected a JSON object with an array under '", d.split, "'");
    int64_t n = 0;
    for (const json& item : j[d.split]) {
      NPEFF_CHECK(item.is_array(), d.path, ": ", d.split, "[", n, "] is not an array");
      std::map<std::string, std::string> row;
      for (size_t c = 0; c < item.size(); ++c) row[std::to_string(c)] = value_text(item[c]);
      rows.push_back(std::move(row));
      where.push_back(d.path + ": " + d.split + "[" + std::to_string(n++) + "]");
    }
  }
  const int64_t total = static_cast<int64_t>(rows.size());
  NPEFF_CHECK(start >= 0 && start <= total, "--start ", start, " is past the ", total,
              " examples of ", d.path);
  const int64_t end = count < 0 ? total : std::min(total, start + count);
  std::vector<Example> out;
  for (int64_t i = start; i < end; ++i) {
    std::map<std::string, std::string> values;
    for (const auto& [placeholder, field] : d.fields) {
      const auto it = rows[i].find(field);
      NPEFF_CHECK(it != rows[i].end(), where[i], ": missing field '", field, "' (for {",
                  placeholder, "})");
      values[placeholder] = it->second;
    }
    Example e;
    e.id = i;
    e.prompt = fill_template(task.prompt_template, values, where[i]);
    if (!d.label_field.empty()) {
      const auto it = rows[i].find(d.label_field);
      NPEFF_CHECK(it != rows[i].end(), where[i], ": missing label field '", d.label_field, "'");
      const auto named = d.label_names.find(it->second);
      const std::string label = named == d.label_names.end() ? it->second : named->second;
      const auto pos = std::find(task.labels.begin(), task.labels.end(), label);
      NPEFF_CHECK(pos != task.labels.end(), where[i], ": label '", label,
                  "' is not one of the task's ", task.labels.size(), " labels");
      e.label = pos - task.labels.begin();
    }
    out.push_back(std::move(e));
  }
  NPEFF_CHECK(!out.empty(), d.path, ": no examples (", total, " in the file, start ", start, ")");
  return out;
}

}  // namespace npeff::task
