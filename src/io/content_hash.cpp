// io::content_hash: an input's content fingerprint, cached by file identity (see
// include/npeff/io/content_hash.h and docs/formats.md, "Provenance").
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/core/paths.h"
#include "npeff/io/content_hash.h"
#include "npeff/io/mapped_file.h"
#include "npeff/io/resume.h"

namespace npeff::io {
namespace {

struct Fnv1a64 {
  uint64_t h = 0xcbf29ce484222325ULL;
  // Eight bytes per step (~1 GB/s); the cache makes it once per checkpoint version.
  void add(const uint8_t* p, uint64_t n) {
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  }
  void add(const std::string& s) { add(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
  std::string hex() const {
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
    return out;
  }
};

// The files content_hash reads: `path` itself, or a directory's regular files sorted by name.
std::vector<std::string> hashed_files(const std::string& path, bool& is_dir) {
  struct stat st {};
  NPEFF_CHECK(::stat(path.c_str(), &st) == 0, "cannot read '", path, "'");
  is_dir = S_ISDIR(st.st_mode);
  if (!is_dir) return {""};
  std::vector<std::string> files;
  DIR* dir = ::opendir(path.c_str());
  NPEFF_CHECK(dir != nullptr, "cannot list directory '", path, "'");
  while (const dirent* e = ::readdir(dir)) {
    const std::string f = path + "/" + e->d_name;
    struct stat fs {};
    if (::stat(f.c_str(), &fs) == 0 && S_ISREG(fs.st_mode)) files.push_back(e->d_name);
  }
  ::closedir(dir);
  std::sort(files.begin(), files.end());
  return files;
}

// What identifies the files' versions without reading them: one [name, size, mtime_ns,
// ctime_ns, inode] per file. ctime moves on every write and cannot be set by a user. (Not the
// device number: on NFS and Lustre it differs between the nodes of one SLURM job.) `newest_ns`
// receives the latest mtime or ctime.
nlohmann::json identity(const std::string& path, const std::vector<std::string>& files, bool is_dir,
                        int64_t* newest_ns = nullptr) {
  nlohmann::json id = nlohmann::json::array();
  for (const std::string& name : files) {
    const std::string f = is_dir ? path + "/" + name : path;
    struct stat st {};
    NPEFF_CHECK(::stat(f.c_str(), &st) == 0, "cannot read '", f, "'");
    const auto ns = [](const timespec& t) {
      return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
    };
    id.push_back({name, static_cast<int64_t>(st.st_size), ns(st.st_mtim), ns(st.st_ctim),
                  static_cast<uint64_t>(st.st_ino)});
    if (newest_ns != nullptr) *newest_ns = std::max({*newest_ns, ns(st.st_mtim), ns(st.st_ctim)});
  }
  return id;
}

std::string compute_hash(const std::string& path, const std::vector<std::string>& files,
                         bool is_dir) {
  Fnv1a64 hash;
  for (const std::string& name : files) {
    if (is_dir) hash.add(name);
    const MappedFile m = MappedFile::open(is_dir ? path + "/" + name : path, "input file");
    hash.add(std::to_string(m.size()));
    hash.add(m.data(), m.size());
  }
  return "fnv1a64:" + hash.hex();
}

}  // namespace

std::string content_hash_cache_dir() {
  const auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  std::string base = env("NPEFF_CACHE_DIR");
  if (base == "off") return "";
  if (base.empty() && !env("XDG_CACHE_HOME").empty()) base = env("XDG_CACHE_HOME") + "/npeff";
  if (base.empty() && !env("HOME").empty()) base = env("HOME") + "/.cache/npeff";
  return base.empty() ? "" : base + "/content-hash";
}

std::string content_hash(const std::string& path) {
  bool is_dir = false;
  const std::vector<std::string> files = hashed_files(path, is_dir);
  std::error_code ec;
  int64_t newest_ns = 0;
  const nlohmann::json key = {{"path", absolute_path(path)},
                              {"files", identity(path, files, is_dir, &newest_ns)}};
  const std::string key_text = key.dump();
  const std::string dir = content_hash_cache_dir();
  const std::string entry = dir.empty() ? "" : dir + "/" + fingerprint_id(key) + ".json";
  if (!entry.empty()) {
    std::ifstream in(entry);
    const nlohmann::json cached = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    // The whole key is stored: a colliding entry name is a miss, not a wrong hash.
    if (cached.is_object() && cached.value("key", "") == key_text && cached.contains("hash") &&
        cached["hash"].is_string()) {
      log::debug("content hash of ", path, " from the cache ", entry);
      return cached["hash"].get<std::string>();
    }
  }
  const std::string hash = compute_hash(path, files, is_dir);
  // Cached only when nothing changed while it was read, and not for a file changed in the last
  // 2 s (git's "racy clean" rule): kernels before 6.13 move ctime once per timer tick, so a
  // second write within the tick would otherwise keep the cached key.
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  if (entry.empty() || identity(path, files, is_dir) != key["files"] ||
      now_ns - newest_ns < int64_t{2000000000})
    return hash;
  std::filesystem::create_directories(dir, ec);
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  const std::string temp = entry + ".tmp." + host + "." + std::to_string(::getpid());
  {
    std::ofstream out(temp);
    out << nlohmann::json{{"key", key_text}, {"hash", hash}}.dump() << "\n";
    if (!out.good()) ec = std::make_error_code(std::errc::io_error);
  }
  // Temporary name + rename: concurrent shards write the same entry; each rename is whole.
  if (ec || std::rename(temp.c_str(), entry.c_str()) != 0) {
    std::remove(temp.c_str());
    // Said aloud for large inputs: every later start reads them again (~1 s per GB).
    int64_t bytes = 0;
    for (const auto& f : key["files"]) bytes += f[1].get<int64_t>();
    const std::string what = "cannot cache the content hash of " + path + " in " + dir +
                             ": every start reads it again (set NPEFF_CACHE_DIR to a writable "
                             "folder)";
    if (bytes >= (int64_t{1} << 30))
      log::warn(what);
    else
      log::debug(what);
  }
  return hash;
}

}  // namespace npeff::io
