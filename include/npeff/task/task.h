// Tasks as configs (configs/tasks/*.json): how an example's prompt is built from a data file and
// what distribution p(y|x) NPEFF looks at (paper Appendix D):
//   label-tokens  p over labels = softmax of the logits of the first token of prefix + label
//                 (SST-2, Yahoo Answers Topics);
//   suffixes      p over labels = softmax of the summed log-probs of each label's tokens as a
//                 suffix of the prompt (CLINC150);
//   vocab         the full next-token distribution (TriviaQA).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace npeff::task {

enum class TaskKind { kLabelTokens, kSuffixes, kVocab };
const char* task_kind_name(TaskKind kind);

// A relative path in a task file resolves against that file's folder (Task::load).
struct DataSource {
  std::string format;  // "tsv" (header line names the columns), "jsonl", "json-pairs"
  std::string path;
  std::string split;  // json-pairs: the top-level key holding [[text, label], ...]
  // Template placeholder -> column name (tsv), key (jsonl) or index "0"/"1" (json-pairs).
  std::map<std::string, std::string> fields;
  std::string label_field;                         // empty: the data has no labels
  std::map<std::string, std::string> label_names;  // raw label value -> label text
};

struct Task {
  std::string name;
  TaskKind kind = TaskKind::kLabelTokens;
  std::string prompt_template;  // "{field}" placeholders; "{{" and "}}" are literal braces
  std::vector<std::string> labels;
  std::string label_prefix = " ";  // put before a label before tokenizing it
  DataSource data;

  // Parses and validates a task config (npeff::Error naming the problem and `source`). With a
  // `base_dir`, a relative data.path resolves against it (npeff/core/paths.h).
  static Task from_json_text(const std::string& text, const std::string& source,
                             const std::string& base_dir = "");
  // Reads a task config file; relative paths in it resolve against the file's folder.
  static Task load(const std::string& path);
  std::string to_json() const;  // canonical JSON, recorded as provenance
};

struct Example {
  int64_t id = 0;      // index of the example in the data source
  std::string prompt;  // the filled template
  int64_t label = -1;  // index into Task::labels, -1 when the data has no label
};

// Reads examples [start, start + count) of the task's data (count < 0: all). Errors name the
// file and line: a missing field, a label outside the task's label set, an empty result.
std::vector<Example> load_examples(const Task& task, int64_t start = 0, int64_t count = -1);

// Fills "{name}" placeholders; every placeholder must have a value.
std::string fill_template(const std::string& tmpl, const std::map<std::string, std::string>& values,
                          const std::string& source);

}  // namespace npeff::task
