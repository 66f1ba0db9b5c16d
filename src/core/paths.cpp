#include "npeff/core/paths.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "npeff/core/error.h"

namespace npeff {

namespace fs = std::filesystem;

std::string resolve_path(const std::string& path, const std::string& base_dir) {
  if (path.empty() || base_dir.empty()) return path;
  const fs::path p(path);
  if (p.is_absolute()) return path;
  return (fs::path(base_dir) / p).lexically_normal().string();
}

std::string absolute_path(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(path), ec);
  if (ec) abs = fs::path(path);
  abs = abs.lexically_normal();
  if (!abs.has_filename() && abs.has_parent_path() && abs != abs.root_path())
    abs = abs.parent_path();  // "a/b/" -> "a/b"
  return abs.string();
}

std::string folder_of(const std::string& file) {
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(file), ec);
  if (ec) abs = fs::path(file);
  return abs.lexically_normal().parent_path().string();
}

bool PathCheck::check(const std::string& what, const std::string& path, Want want) {
  const auto fail = [&](const std::string& why) {
    problems_.push_back(what + ": " + (path.empty() ? "''" : path) + " (" + why + ")");
    return false;
  };
  if (path.empty()) return fail("empty path");
  std::error_code ec;
  const fs::file_status st = fs::status(fs::path(path), ec);
  if (!fs::exists(st)) {
    if (ec && ec != std::errc::no_such_file_or_directory) return fail(ec.message());
    // Name the first missing folder on the way, the usual cause of a wrong relative path.
    const fs::path abs = fs::absolute(fs::path(path), ec).lexically_normal();
    fs::path missing;
    for (fs::path p = abs.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
      std::error_code e;
      if (fs::exists(p, e)) break;
      missing = p;
    }
    return fail(missing.empty() ? "does not exist"
                                : "does not exist: no folder " + missing.string());
  }
  const bool is_dir = fs::is_directory(st);
  if (want == Want::kFile && is_dir) return fail("a folder, expected a file");
  if (want == Want::kFolder && !is_dir) return fail("not a folder");
  if (::access(path.c_str(), is_dir ? (R_OK | X_OK) : R_OK) != 0) return fail(std::strerror(errno));
  return true;
}

bool PathCheck::file(const std::string& what, const std::string& path) {
  return check(what, path, Want::kFile);
}

bool PathCheck::files(const std::string& what, const std::vector<std::string>& paths) {
  bool all = true;
  for (const std::string& p : paths) all = check(what, p, Want::kFile) && all;
  return all;
}

bool PathCheck::folder(const std::string& what, const std::string& path) {
  return check(what, path, Want::kFolder);
}

bool PathCheck::file_or_folder(const std::string& what, const std::string& path) {
  return check(what, path, Want::kEither);
}

void PathCheck::add(const std::string& problem) {
  problems_.push_back(problem);
}

void PathCheck::throw_if_any() const {
  if (problems_.empty()) return;
  if (problems_.size() == 1) throw Error(problems_.front());
  std::string text = std::to_string(problems_.size()) + " problems with the inputs:";
  for (const std::string& p : problems_) text += "\n  " + p;
  throw Error(text);
}

}  // namespace npeff
