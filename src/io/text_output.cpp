#include "npeff/io/text_output.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "npeff/core/error.h"

namespace npeff::io {

namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  NPEFF_CHECK(f.good(), "cannot write ", path);
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".partial";
  write_file(tmp, bytes);
  NPEFF_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename ", tmp, " to ", path);
}

std::string begin_folder(const std::string& out) {
  const std::string tmp = out + ".partial.d";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  return tmp;
}

void commit_folder(const std::string& tmp, const std::string& out) {
  if (fs::exists(out)) fs::remove_all(out);
  fs::rename(tmp, out);
}

}  // namespace npeff::io
