// Read-only file mapping shared by the GGUF and safetensors readers: see
// include/npeff/io/mapped_file.h.
#include "npeff/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "npeff/core/error.h"

namespace npeff::io {

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
