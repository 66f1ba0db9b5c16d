// A read-only memory mapping of a whole regular file: the RAII part shared by the GGUF and
// safetensors readers. An implementation detail of npeff_base, public only because
// npeff::gguf::File and npeff::safetensors::File hold one by value (so that their move
// operations can be defaulted). No LibTorch, no HDF5.
#pragma once

#include <cstdint>
#include <string>

namespace npeff::io {

/// Movable, not copyable; unmaps on destruction. data() stays valid across moves (the mapping
/// itself does not move); a moved-from MappedFile is empty.
class MappedFile {
 public:
  MappedFile() = default;

  /// Maps `path` read-only. `kind` ("GGUF file", "safetensors file") names the file in error
  /// messages: "cannot open <kind> 'path': ...". Throws npeff::Error for a missing, unreadable
  /// or non-regular file, and for a Git LFS pointer (check_not_lfs_pointer). An empty file gives
  /// data() == nullptr and size() == 0 rather than an error (mmap refuses a length of 0): each
  /// format reports a too-short file in its own terms.
  static MappedFile open(const std::string& path, const char* kind);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  /// File size in bytes.
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;

  std::string path_;
  const uint8_t* data_ = nullptr;  // nullptr for an empty or moved-from mapping
  uint64_t size_ = 0;
};

/// Throws npeff::Error when the `size` bytes at `data` (the start of the file `path`) are a Git
/// LFS pointer (text starting "version https://git-lfs.github.com/spec/"): the small file Git
/// leaves in place of a large one when Git LFS is not installed or `git lfs pull` was not run.
/// MappedFile::open calls it; readers that do not map the file call it on its first bytes.
void check_not_lfs_pointer(const std::string& path, const uint8_t* data, uint64_t size);

}  // namespace npeff::io
