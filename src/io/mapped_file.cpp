// Read-only file mapping shared by the GGUF and safetensors readers: see
// include/npeff/io/mapped_file.h.
#include "npeff/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "npeff/core/error.h"

namespace npeff::io {

void check_not_lfs_pointer(const std::string& path, const uint8_t* data, uint64_t size) {
  // https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md: "version <url>" first, pointers
  // are under 1024 bytes. The pre-release spec URL was hawser.github.com.
  static const char* const kPrefixes[] = {"version https://git-lfs.github.com/spec/",
                                          "version https://hawser.github.com/spec/"};
  if (data == nullptr || size >= 1024) return;
  const std::string text(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
  bool pointer = false;
  for (const char* prefix : kPrefixes) pointer = pointer || text.rfind(prefix, 0) == 0;
  if (!pointer) return;
  std::string real_size;
  const std::size_t at = text.find("\nsize ");
  if (at != std::string::npos) {
    const std::size_t end = text.find_first_not_of("0123456789", at + 6);
    real_size = text.substr(at + 6, (end == std::string::npos ? text.size() : end) - at - 6);
  }
  NPEFF_FAIL(path, ": this is a Git LFS pointer (", size, " bytes of text standing for ",
             real_size.empty() ? std::string("a larger file") : "a file of " + real_size + " bytes",
             "), not the file itself: run 'git lfs install' and 'git lfs pull' in its ",
             "repository, or download the file directly");
}

MappedFile MappedFile::open(const std::string& path, const char* kind) {
  MappedFile file;
  file.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  NPEFF_CHECK(fd >= 0, "cannot open ", kind, " '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    NPEFF_FAIL("cannot stat ", kind, " '", path, "': ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    NPEFF_FAIL(kind, " '", path, "' is not a regular file");
  }
  file.size_ = static_cast<uint64_t>(st.st_size);
  if (file.size_ == 0) {
    ::close(fd);
    return file;
  }
  void* map = ::mmap(nullptr, static_cast<std::size_t>(file.size_), PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  NPEFF_CHECK(map != MAP_FAILED, "cannot memory-map ", kind, " '", path, "' (", file.size_,
              " bytes): ", std::strerror(err));
  file.data_ = static_cast<const uint8_t*>(map);
  check_not_lfs_pointer(path, file.data_, file.size_);  // throws; ~MappedFile unmaps
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() noexcept {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), static_cast<std::size_t>(size_));
  data_ = nullptr;
}

}  // namespace npeff::io
