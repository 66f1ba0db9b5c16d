#include "npeff/io/resume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "io/hdf5_internal.h"
#include "npeff/core/error.h"
#include "npeff/core/paths.h"
#include "npeff/io/content_hash.h"

namespace npeff::io {
namespace {

namespace fs = std::filesystem;
constexpr const char* kSettings = "settings.json";
constexpr const char* kTempSuffix = ".partial";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The keys of two settings objects whose values differ (the whole text when not objects).
std::string differing_keys(const nlohmann::json& a, const nlohmann::json& b) {
  if (!a.is_object() || !b.is_object()) return "(all)";
  std::vector<std::string> keys;
  for (const auto& [k, v] : a.items())
    if (!b.contains(k) || b.at(k) != v) keys.push_back(k);
  for (const auto& [k, v] : b.items())
    if (!a.contains(k)) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  std::string out;
  for (const std::string& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out.empty() ? "(none: formatting only)" : out;
}

}  // namespace

nlohmann::json file_fingerprint(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  NPEFF_CHECK(fs::exists(st), path, ": no such file or folder");
  const std::string abs = absolute_path(path);
  std::int64_t size = 0;
  if (!fs::is_directory(st)) {
    size = static_cast<std::int64_t>(fs::file_size(path, ec));
  } else {
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file(ec)) size += static_cast<std::int64_t>(e.file_size(ec));
  }
  // The content, not the mtime: a data file or checkpoint restaged at the same path (a fresh
  // node-local copy, a re-extracted archive, a remounted share) is the same input, and a resume
  // of hours of work must not be refused for it. content_hash reads each version once (cached).
  return {{"path", abs}, {"size", size}, {"content", content_hash(path)}};
}

std::string canonical_json(const nlohmann::json& settings) {
  return settings.dump();
}

std::string fingerprint_id(const nlohmann::json& settings) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (const unsigned char c : canonical_json(settings)) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

ResumeDir::ResumeDir(const std::string& out, nlohmann::json settings, bool writer)
    : dir_(out + ".partial.d"), settings_(std::move(settings)), writer_(writer) {
  std::error_code ec;
  const fs::file_status st = fs::status(dir_, ec);
  if (!fs::exists(st)) return;
  NPEFF_CHECK(fs::is_directory(st), dir_, " exists but is not a folder: delete it, it is where ",
              out, " keeps its work until done");
  const std::string settings_path = path(kSettings);
  if (!fs::exists(settings_path, ec)) {
    // Killed between creating the folder and renaming settings.json into place leaves no
    // pieces; pieces without settings come from something else (an older npeff).
    NPEFF_CHECK(pieces().empty(), "cannot resume from ", dir_,
                ": it holds pieces but no settings.json (left by an older npeff?). Delete ", dir_,
                " to start over.");
    return;
  }
  nlohmann::json found;
  {
    std::ifstream in(settings_path);
    std::stringstream text;
    text << in.rdbuf();
    found = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  }
  NPEFF_CHECK(!found.is_discarded(), "cannot resume from ", dir_, ": ", settings_path,
              " is not valid JSON. Delete ", dir_, " to start over.");
  NPEFF_CHECK(canonical_json(found) == canonical_json(settings_), "cannot resume from ", dir_,
              ": it was started with different inputs or settings (fingerprint ",
              fingerprint_id(found), " there, ", fingerprint_id(settings_),
              " for this run; they differ in: ", differing_keys(found, settings_),
              "). Rerun the original command to continue it, or delete ", dir_,
              " to start over.\n  there:    ", canonical_json(found),
              "\n  this run: ", canonical_json(settings_));
  resumed_ = true;
  settings_written_ = true;
}

std::string ResumeDir::path(const std::string& name) const {
  return dir_ + "/" + name;
}

bool ResumeDir::has(const std::string& name) const {
  std::error_code ec;
  return fs::is_regular_file(path(name), ec);
}

File ResumeDir::open(const std::string& name) const {
  return File::open(path(name));
}

File ResumeDir::create(const std::string& name) {
  NPEFF_ASSERT(writer_, "ResumeDir::create(", name, ") by a process that only reads ", dir_);
  NPEFF_ASSERT(name != kSettings && !ends_with(name, kTempSuffix), "bad piece name ", name);
  if (!settings_written_) write_settings();
  return File::create(path(name));
}

std::vector<std::string> ResumeDir::pieces() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string n = e.path().filename().string();
    if (n == kSettings || ends_with(n, kTempSuffix) || !e.is_regular_file(ec)) continue;
    names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void ResumeDir::finish() {
  if (!writer_) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
  NPEFF_CHECK(!ec, "cannot remove ", dir_, " after writing its result: ", ec.message());
}

void ResumeDir::write_settings() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  NPEFF_CHECK(!ec, "cannot create ", dir_, ": ", ec.message());
  // Temporary name + rename, like the pieces: settings.json exists whole or not at all.
  const std::string final_path = path(kSettings), temp = final_path + kTempSuffix;
  {
    std::ofstream out(temp, std::ios::trunc);
    out << canonical_json(settings_) << "\n";
    out.close();
    NPEFF_CHECK(out.good(), "cannot write ", temp, " (disk full?)");
  }
  detail::fsync_path(temp, true);
  NPEFF_CHECK(std::rename(temp.c_str(), final_path.c_str()) == 0, "cannot rename ", temp,
              " into place: ", std::strerror(errno));
  detail::fsync_path(dir_, false);
  settings_written_ = true;
}

}  // namespace npeff::io
