// Paths given to npeff: how relative paths inside files resolve, and checking every input path
// of a subcommand before its long work starts.
//
// Rule: a relative path written inside a file (a task config's data.path, an option value in a
// `--config` file) resolves against the folder of that file, not the working directory. Paths
// given on the command line resolve against the working directory as usual. A leading '~' is
// not expanded (there is no shell): it is an ordinary relative name.
#pragma once

#include <string>
#include <vector>

namespace npeff {

/// `path` resolved against the folder `base_dir`: unchanged when empty, absolute, or when
/// `base_dir` is empty; otherwise base_dir/path, lexically normalised ("a/../b" -> "b").
std::string resolve_path(const std::string& path, const std::string& base_dir);

/// `path` as one spelling per file: absolute, lexically normalised, no trailing separator
/// ("model/", "./model" and "/abs/model" give the same string); "" stays "". What npeff records
/// for an input path in resume settings, so a rerun typed differently still resumes.
std::string absolute_path(const std::string& path);

/// The absolute, normalised folder holding `file` (the base of the paths written in it).
std::string folder_of(const std::string& file);

/// Collects the problems of a subcommand's input paths, so that one npeff::Error (exit 2) names
/// them all: "WHAT: PATH (WHY)", one per line. Each check returns whether the path is usable.
///   PathCheck inputs;
///   inputs.file("--decomposition", o.decomposition);
///   inputs.files("--pefs", o.pefs);
///   inputs.throw_if_any();
class PathCheck {
 public:
  /// A readable regular file.
  bool file(const std::string& what, const std::string& path);
  /// Each of `paths` a readable regular file.
  bool files(const std::string& what, const std::vector<std::string>& paths);
  /// A readable folder.
  bool folder(const std::string& what, const std::string& path);
  /// A readable file or folder (a model: HF directory, GGUF or llama2.c file).
  bool file_or_folder(const std::string& what, const std::string& path);
  /// Any other problem found while checking (e.g. a task config that does not parse).
  void add(const std::string& problem);

  bool ok() const { return problems_.empty(); }
  const std::vector<std::string>& problems() const { return problems_; }
  /// Throws npeff::Error naming every problem (nothing when there is none).
  void throw_if_any() const;

 private:
  enum class Want { kFile, kFolder, kEither };
  bool check(const std::string& what, const std::string& path, Want want);
  std::vector<std::string> problems_;
};

}  // namespace npeff
