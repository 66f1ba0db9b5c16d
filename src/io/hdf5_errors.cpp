// Why an HDF5 call failed, for npeff's messages: HDF5's own most specific message, and telling a
// file this HDF5 library cannot read because a newer HDF5 wrote it in a newer file format
// (h5py's libver='latest') from a corrupt one. Declared in io/hdf5_internal.h.
//
// Measured with h5py 3.16 (HDF5 2.0.0) against Debian 12's HDF5 1.10.8: every superblock h5py
// writes (versions 0, 2, 3) opens; what fails is opening a dataset whose object header holds a
// message newer than 1.10 decodes: "bad version number for layout message" (chunked + filtered,
// libver low bound 'v200'/'latest'), "bad version number for datatype message" (complex numbers,
// low bound >= 'v112'). tools/fixtures/make_hdf5_newer_fixture.py has the details.
#include <hdf5.h>

#include <cstring>
#include <fstream>
#include <string>

#include "io/hdf5_internal.h"
#include "npeff/core/error.h"

namespace npeff::io::detail {
namespace {

// The newest superblock version HDF5 1.10 to 2.0 read and write.
constexpr int kNewestSuperblockVersion = 3;

struct ErrorStack {
  std::string innermost;  // the most specific message
  std::string version;    // the innermost refusal of a version, or ""
};

// HDF5's decoders refuse a structure newer than the library with "bad version number for
// layout message", "bad superblock version number", "wrong B-tree header version", ... Not
// "bad object header version number": version 1 object headers have no checksum, so that is
// what garbage in one gives (and HDF5 1.8 to 2.0 all write object header versions 1 and 2).
bool is_version_refusal(const char* desc) {
  const std::string d(desc);
  if (d.find("version") == std::string::npos ||
      d.find("object header version") != std::string::npos) {
    return false;
  }
  for (const char* word : {"bad ", "wrong ", "incorrect ", "unknown ", "unsupported "}) {
    if (d.find(word) != std::string::npos) return true;
  }
  return false;
}

// Reads and clears HDF5's error stack.
ErrorStack read_error_stack() {
  ErrorStack stack;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* data) -> herr_t {
        if (err == nullptr || err->desc == nullptr) return 0;
        auto* s = static_cast<ErrorStack*>(data);
        if (n == 0) s->innermost = err->desc;
        if (s->version.empty() && is_version_refusal(err->desc)) s->version = err->desc;
        return 0;
      },
      &stack);
  H5Eclear2(H5E_DEFAULT);
  return stack;
}

std::string newer_format_message(const std::string& found, const std::string& hdf5_says) {
  const std::string lib = hdf5_library_version();
  return ": the file is HDF5 in a newer file format than this npeff reads (" + found +
         "HDF5: " + hdf5_says + "); this npeff is built with HDF5 " + lib +
         ", which reads files of HDF5 <= " + lib +
         " and newer files written in their oldest format (h5py: libver='earliest', its "
         "default). Rewrite the file: in h5py, read each dataset and write it again into "
         "h5py.File(OUT, 'w', libver='earliest') (copying objects keeps their format); or build "
         "npeff against a newer HDF5. If no newer HDF5 wrote the file, it is corrupt";
}

// The version byte of the file's superblock (after the signature at byte 0, 512, 1024, ...), or
// -1 when there is none.
int superblock_version(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  for (std::streamoff at = 0; at < (std::streamoff{1} << 40); at = at == 0 ? 512 : 2 * at) {
    char head[9] = {0};
    if (!in.seekg(at) || !in.read(head, sizeof head)) break;
    if (std::memcmp(head, kSignature, sizeof kSignature) == 0) {
      return static_cast<unsigned char>(head[8]);
    }
  }
  return -1;
}

}  // namespace

std::string hdf5_detail() {
  const std::string detail = read_error_stack().innermost;
  return detail.empty() ? std::string() : " [HDF5: " + detail + "]";
}

std::string hdf5_library_version() {
  // The headers' version, which HDF5 checks equals the library's at run time (H5check). Not
  // H5get_libversion(): like every HDF5 API call it would clear the error stack.
  return std::to_string(H5_VERS_MAJOR) + "." + std::to_string(H5_VERS_MINOR) + "." +
         std::to_string(H5_VERS_RELEASE);
}

std::string unreadable_detail(const std::string& corrupt_hint, const std::string& found) {
  const ErrorStack stack = read_error_stack();
  if (!stack.version.empty()) return newer_format_message(found, stack.version);
  return corrupt_hint + (stack.innermost.empty() ? "" : " [HDF5: " + stack.innermost + "]");
}

Handle checked_read(hid_t id, const std::string& what, const std::string& corrupt_hint) {
  if (id < 0) NPEFF_FAIL(what, unreadable_detail(corrupt_hint));
  return Handle(id);
}

std::string open_failure_detail(const std::string& path) {
  const int sb = superblock_version(path);
  const std::string corrupt = " (truncated or corrupt HDF5 file?)";
  if (sb > kNewestSuperblockVersion + 6) {  // not a future version: garbage
    return corrupt + ": superblock version " + std::to_string(sb) + hdf5_detail();
  }
  if (sb <= kNewestSuperblockVersion) return unreadable_detail(corrupt);
  return unreadable_detail(corrupt, "superblock version " + std::to_string(sb) + ", HDF5 " +
                                        hdf5_library_version() + " reads versions 0 to " +
                                        std::to_string(kNewestSuperblockVersion) + "; ");
}

}  // namespace npeff::io::detail
