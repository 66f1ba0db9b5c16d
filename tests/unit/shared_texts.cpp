#include "unit/shared_texts.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace npeff::testing {

std::string Fnv1a64::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", h);
  return buf;
}

namespace {
using json = nlohmann::json;

std::string strip_eol(std::string line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

std::vector<std::string> tsv_sentences(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    line = strip_eol(line);
    out.push_back(line.substr(0, line.rfind('\t')));
  }
  return out;
}

std::vector<std::string> clinc(const std::string& path) {
  std::ifstream in(path);
  const json root = json::parse(in);
  std::vector<std::string> keys, out;
  for (auto it = root.begin(); it != root.end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end());
  std::set<std::string> intents;
  for (const std::string& k : keys) {
    for (const json& item : root[k]) {
      out.push_back(item[0].get<std::string>());
      intents.insert(item[1].get<std::string>());
    }
  }
  out.insert(out.end(), intents.begin(), intents.end());
  return out;
}

std::vector<json> jsonl(const std::string& path) {
  std::vector<json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!strip_eol(line).empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

std::vector<std::string> yahoo(const std::string& dir) {
  std::vector<std::string> files, out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".jsonl") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::set<std::string> labels;
  for (const std::string& f : files) {
    for (const json& row : jsonl(f)) {
      for (const char* key : {"title", "content"}) {
        if (row.contains(key) && row[key].is_string()) out.push_back(row[key].get<std::string>());
      }
      labels.insert(row["label"].get<std::string>());
    }
  }
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

std::vector<std::string> trivia(const std::string& path) {
  std::vector<std::string> out;
  for (const json& row : jsonl(path)) {
    out.push_back(row["question"].get<std::string>());
    for (const json& a : row["golden_answers"]) out.push_back(a.get<std::string>());
  }
  return out;
}
}  // namespace

std::vector<std::pair<std::string, std::vector<std::string>>> shared_texts(
    const std::string& data_dir) {
  if (!std::filesystem::is_directory(data_dir)) return {};
  return {{"sst2/train", tsv_sentences(data_dir + "/sst2/train.tsv")},
          {"sst2/validation", tsv_sentences(data_dir + "/sst2/validation.tsv")},
          {"clinc150", clinc(data_dir + "/clinc150/data_full.json")},
          {"yahoo", yahoo(data_dir + "/yahoo_answers_topics")},
          {"triviaqa", trivia(data_dir + "/triviaqa/questions_1000.jsonl")}};
}

}  // namespace npeff::testing
