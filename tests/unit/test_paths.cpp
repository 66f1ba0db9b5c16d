// Relative paths inside files resolve against the file's folder (task configs, --config files);
// PathCheck reports every bad input path in one error.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "npeff/core/error.h"
#include "npeff/core/json_config.h"
#include "npeff/core/paths.h"
#include "npeff/core/progress.h"
#include "npeff/task/task.h"
#include "unit/test_util.h"

namespace npeff {
namespace {

using namespace npeff::testing;
namespace fs = std::filesystem;

// One spelling per path, as resume settings record it (a trailing '/' from tab completion, "./",
// "a/../" and a relative path all name the same folder).
TEST(AbsolutePath, OneSpellingPerPath) {
  const std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(npeff::absolute_path("model/"), cwd + "/model");
  EXPECT_EQ(npeff::absolute_path("./x/../model"), cwd + "/model");
  EXPECT_EQ(npeff::absolute_path(cwd + "/model//"), cwd + "/model");
  EXPECT_EQ(npeff::absolute_path("/"), "/");
  EXPECT_EQ(npeff::absolute_path(""), "");
}

// Durations in progress lines: a short run keeps three digits ("done, 170 steps in 0.0s" was
// printed for 22 ms while --json said 0.29 s of the whole job).
TEST(FormatDuration, ShortAndLong) {
  EXPECT_EQ(npeff::format_duration(0.0225), "22.5ms");
  EXPECT_EQ(npeff::format_duration(0.09996), "0.10s");
  EXPECT_EQ(npeff::format_duration(6.123), "6.12s");
  EXPECT_EQ(npeff::format_duration(9.996), "10.0s");
  EXPECT_EQ(npeff::format_duration(16.14), "16.1s");
  EXPECT_EQ(npeff::format_duration(59.96), "1m00s");
  EXPECT_EQ(npeff::format_duration(245), "4m05s");
  EXPECT_EQ(npeff::format_duration(3723), "1h02m03s");
  EXPECT_EQ(npeff::format_duration(NAN), "?");
}

TEST(ResolvePath, RelativeAbsoluteTildeEmpty) {
  EXPECT_EQ(resolve_path("data.tsv", "/a/b"), "/a/b/data.tsv");
  EXPECT_EQ(resolve_path("../../../shared/data/x.tsv", "/r/main/configs/tasks"),
            "/r/shared/data/x.tsv");
  EXPECT_EQ(resolve_path("./x/../y.h5", "/a"), "/a/y.h5");
  EXPECT_EQ(resolve_path("/abs/x.h5", "/a/b"), "/abs/x.h5");  // absolute: unchanged
  EXPECT_EQ(resolve_path("~/x.h5", "/a/b"), "/a/b/~/x.h5");   // '~' is not expanded
  EXPECT_EQ(resolve_path("", "/a/b"), "");                    // empty: nothing given
  EXPECT_EQ(resolve_path("x.h5", ""), "x.h5");                // no base: as given
}

TEST(ResolvePath, FolderOfIsAbsolute) {
  EXPECT_EQ(folder_of("/a/b/c.json"), "/a/b");
  const std::string rel = folder_of("configs/tasks/sst2.json");
  EXPECT_TRUE(fs::path(rel).is_absolute()) << rel;
  EXPECT_EQ(rel, (fs::current_path() / "configs/tasks").lexically_normal().string());
}

TEST(ConfigPaths, PathOptionsAreResolvedOthersAreNot) {
  const std::vector<ConfigEntry> e = parse_json_config(
      R"({"threads": 2, "out": "o.h5",
          "compute-pefs": {"model": "../m.gguf", "task": "/abs/t.json", "tokenizer": "~/tok.json",
                           "params": "model.layers.*", "proj-dim": 16, "name": "x/y"},
          "decompose": {"pefs": ["a.h5", "/b.h5"]},
          "compare": {"tunings": {"decompositions": ["NPEFF=d.h5", "GC=/g.h5"]},
                      "similarity": {"decompositions": ["a=b.h5"]}}})",
      "c.json", "/cfg/dir");
  std::map<std::string, std::vector<std::string>> by;
  for (const auto& x : e) {
    std::string key;
    for (const auto& p : x.parents) key += p + ".";
    by[key + x.name] = x.values;
  }
  EXPECT_EQ(by["threads"], std::vector<std::string>{"2"});
  EXPECT_EQ(by["out"], std::vector<std::string>{"/cfg/dir/o.h5"});
  EXPECT_EQ(by["compute-pefs.model"], std::vector<std::string>{"/cfg/m.gguf"});
  EXPECT_EQ(by["compute-pefs.task"], std::vector<std::string>{"/abs/t.json"});
  EXPECT_EQ(by["compute-pefs.tokenizer"], std::vector<std::string>{"/cfg/dir/~/tok.json"});
  EXPECT_EQ(by["compute-pefs.params"], std::vector<std::string>{"model.layers.*"});
  EXPECT_EQ(by["compute-pefs.proj-dim"], std::vector<std::string>{"16"});
  EXPECT_EQ(by["compute-pefs.name"], std::vector<std::string>{"x/y"});
  EXPECT_EQ(by["decompose.pefs"], (std::vector<std::string>{"/cfg/dir/a.h5", "/b.h5"}));
  EXPECT_EQ(by["compare.tunings.decompositions"],
            (std::vector<std::string>{"NPEFF=/cfg/dir/d.h5", "GC=/g.h5"}));
  EXPECT_EQ(by["compare.similarity.decompositions"], std::vector<std::string>{"/cfg/dir/a=b.h5"});
}

TEST(ConfigPaths, WithoutAFolderValuesStayAsWritten) {
  const auto e = parse_json_config(R"({"project": {"input": "x.h5"}})", "c.json");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].values, std::vector<std::string>{"x.h5"});
}

TEST(ConfigPaths, Registry) {
  for (const char* name :
       {"pefs", "decomposition", "recovered", "out", "model", "tokenizer", "task", "task-dir",
        "data", "input", "inputs", "file", "coarse", "fine", "plot", "decompositions"})
    EXPECT_EQ(config_path_kind({"x"}, name), ConfigPathKind::kPath) << name;
  for (const char* name : {"params", "name", "proj-dim", "seed", "split", "dataset", "prompt"})
    EXPECT_EQ(config_path_kind({"x"}, name), ConfigPathKind::kNone) << name;
  EXPECT_EQ(config_path_kind({"compare", "tunings"}, "decompositions"), ConfigPathKind::kNamedPath);
}

// tools/reproduce resolves the path options of a paper config's npeff sections itself: its
// list must be this registry.
TEST(ConfigPaths, ReproduceUsesTheSameRegistry) {
  std::ifstream in(source_dir() + "/tools/reproduce");
  ASSERT_TRUE(in.good()) << source_dir() << "/tools/reproduce";
  std::string line, keys;
  while (std::getline(in, line))
    if (line.rfind("path_keys='", 0) == 0) keys = line;
  ASSERT_FALSE(keys.empty()) << "no path_keys='[...]' line in tools/reproduce";
  std::vector<std::string> names;
  for (size_t q = keys.find('"'); q != std::string::npos; q = keys.find('"', q + 1)) {
    const size_t end = keys.find('"', q + 1);
    names.push_back(keys.substr(q + 1, end - q - 1));
    q = end;
  }
  for (const std::string& n : names)
    EXPECT_EQ(config_path_kind({"x"}, n), ConfigPathKind::kPath) << n << " is not a path option";
  EXPECT_EQ(names.size(), 16u) << keys;  // every registry entry (ConfigPaths.Registry)
}

class TaskPathTest : public TempDirTest {
 protected:
  std::string write_task(const std::string& rel, const std::string& data_path) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << R"({"kind": "label-tokens", "labels": ["a", "b"], "template": "{t}",
                           "data": {"format": "tsv", "path": ")"
                     << data_path << R"(", "fields": {"t": "t"}, "label_field": "l"}})";
    return p.string();
  }
};

TEST_F(TaskPathTest, DataPathResolvesAgainstTheTaskFile) {
  fs::create_directories(dir_ / "proj/data");
  std::ofstream(dir_ / "proj/data/d.tsv") << "t\tl\nhello\ta\n";
  const std::string task = write_task("proj/configs/tasks/t.json", "../../data/d.tsv");
  const task::Task t = task::Task::load(task);
  EXPECT_EQ(t.data.path, (dir_ / "proj/data/d.tsv").string());
  // From another working directory, with a relative path to the task file.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_ / "proj/configs");
  const task::Task again = task::Task::load("tasks/t.json");
  fs::current_path(cwd);
  EXPECT_EQ(again.data.path, t.data.path);
  EXPECT_EQ(task::load_examples(t).size(), 1u);
  // Provenance (to_json) records the resolved path; reading it back keeps it.
  EXPECT_EQ(task::Task::from_json_text(t.to_json(), "prov").data.path, t.data.path);
}

TEST_F(TaskPathTest, AbsoluteAndTildeDataPaths) {
  const std::string abs = write_task("a/t.json", "/somewhere/d.tsv");
  EXPECT_EQ(task::Task::load(abs).data.path, "/somewhere/d.tsv");
  const std::string tilde = write_task("b/t.json", "~/d.tsv");
  EXPECT_EQ(task::Task::load(tilde).data.path, (dir_ / "b/~/d.tsv").string());
  // Parsed text without a folder keeps the path as written.
  std::ifstream in(tilde);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(task::Task::from_json_text(text, "t.json").data.path, "~/d.tsv");
}

class PathCheckTest : public TempDirTest {};

TEST_F(PathCheckTest, CollectsEveryProblemInOneError) {
  std::ofstream(path("ok.h5")) << "x";
  fs::create_directories(dir_ / "folder");
  PathCheck c;
  EXPECT_TRUE(c.file("--pefs", path("ok.h5")));
  EXPECT_TRUE(c.folder("--task-dir", path("folder")));
  EXPECT_TRUE(c.file_or_folder("--model", path("folder")));
  EXPECT_TRUE(c.ok());
  c.throw_if_any();  // nothing to report
  EXPECT_FALSE(c.file("--model", path("none.gguf")));
  EXPECT_FALSE(c.file("--decomposition", path("folder")));
  EXPECT_FALSE(c.folder("--task-dir", path("ok.h5")));
  EXPECT_FALSE(c.files("--pefs", {path("ok.h5"), path("a.h5"), path("b.h5")}));
  EXPECT_FALSE(c.file("--recovered", ""));
  EXPECT_FALSE(c.file("--task", path("no/such/dir/t.json")));
  c.add("something else");
  ASSERT_EQ(c.problems().size(), 8u);
  expect_error(
      [&] { c.throw_if_any(); },
      {"8 problems with the inputs:", "\n  --model: " + path("none.gguf") + " (does not exist)",
       "--decomposition: " + path("folder") + " (a folder, expected a file)",
       "--task-dir: " + path("ok.h5") + " (not a folder)",
       "--pefs: " + path("a.h5") + " (does not exist)",
       "--pefs: " + path("b.h5") + " (does not exist)", "--recovered: '' (empty path)",
       "(does not exist: no folder " + path("no") + ")", "something else"});
}

TEST_F(PathCheckTest, OneProblemIsThePlainMessage) {
  PathCheck c;
  c.file("--model", path("none"));
  try {
    c.throw_if_any();
    FAIL() << "expected npeff::Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--model: " + path("none") + " (does not exist)");
  }
}

}  // namespace
}  // namespace npeff
