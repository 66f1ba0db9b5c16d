// RAII layer over the HDF5 C API (see include/npeff/io/hdf5.h and docs/formats.md).
// This file: Handle, File, error silencing and the helpers shared with hdf5_attributes.cpp
// (Object attributes) and hdf5_dataset.cpp (Dataset, Group), declared in io/hdf5_internal.h.
#include "npeff/io/hdf5.h"

#include <fcntl.h>
#include <unistd.h>

#include <hdf5.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <utility>

#include "io/hdf5_internal.h"
#include "npeff/core/error.h"

static_assert(std::is_same<hid_t, std::int64_t>::value,
              "npeff::io::Handle stores hid_t as int64_t (HDF5 >= 1.10)");

namespace npeff::io {
namespace detail {

std::string join_path(const std::string& parent, const std::string& name) {
  if (!name.empty() && name[0] == '/') return name;
  if (parent.empty() || parent == "/") return "/" + name;
  return parent + "/" + name;
}

std::string where(const Object& o) {
  return o.file_name() + ": " + o.path();
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) os << ", ";
    if (shape[i] < 0) {
      os << "*";
    } else {
      os << shape[i];
    }
  }
  os << "]";
  return os.str();
}

// ---- Types ---------------------------------------------------------------------------------

Handle checked(hid_t id, const std::string& what) {
  if (id < 0) NPEFF_FAIL(what, hdf5_detail());
  return Handle(id);
}

Handle copy_type(hid_t predefined) {
  return checked(H5Tcopy(predefined), "H5Tcopy failed");
}

namespace {

// IEEE 754 half precision, little-endian; the same definition h5py uses for numpy.float16.
Handle make_half_type() {
  Handle t = copy_type(H5T_IEEE_F32LE);
  if (H5Tset_fields(t.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(t.get(), 2) < 0 ||
      H5Tset_ebias(t.get(), 15) < 0) {
    NPEFF_ASSERT(false, "cannot define the float16 HDF5 type", hdf5_detail());
  }
  return t;
}

}  // namespace

Handle make_vlen_string_type(H5T_cset_t cset) {
  Handle t = copy_type(H5T_C_S1);
  if (H5Tset_size(t.get(), H5T_VARIABLE) < 0 || H5Tset_cset(t.get(), cset) < 0) {
    NPEFF_ASSERT(false, "cannot define the string HDF5 type", hdf5_detail());
  }
  return t;
}

Handle file_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return copy_type(H5T_IEEE_F32LE);
    case DType::kFloat64:
      return copy_type(H5T_IEEE_F64LE);
    case DType::kFloat16:
      return make_half_type();
    case DType::kInt32:
      return copy_type(H5T_STD_I32LE);
    case DType::kInt64:
      return copy_type(H5T_STD_I64LE);
    case DType::kUInt8:
      return copy_type(H5T_STD_U8LE);
    case DType::kString:
      return make_vlen_string_type();
  }
  NPEFF_ASSERT(false, "unknown DType");
  return Handle();
}

// A human-readable name for any HDF5 datatype: "float32", "int16", "string", "compound"...
std::string describe_type(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t bits = H5Tget_size(type) * 8;
  switch (cls) {
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_STRING:
      return H5Tis_variable_str(type) > 0
                 ? "string"
                 : "string (fixed, " + std::to_string(bits / 8) + " bytes)";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "vlen sequence";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_REFERENCE:
      return "reference";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_TIME:
      return "time";
    default:
      return "unknown type";
  }
}

bool is_numeric_class(H5T_class_t cls) {
  return cls == H5T_INTEGER || cls == H5T_FLOAT;
}

// ---- Dataspaces ----------------------------------------------------------------------------

SpaceInfo space_info(hid_t space, const std::string& what) {
  SpaceInfo info;
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) NPEFF_FAIL(what, ": cannot read its shape", unreadable_detail());
  info.dims.resize(rank);
  info.maxdims.resize(rank);
  if (rank > 0 && H5Sget_simple_extent_dims(space, info.dims.data(), info.maxdims.data()) < 0) {
    NPEFF_FAIL(what, ": cannot read its shape", unreadable_detail());
  }
  info.npoints = H5Sget_simple_extent_npoints(space);
  if (info.npoints < 0) NPEFF_FAIL(what, ": cannot read its shape", unreadable_detail());
  return info;
}

std::vector<hsize_t> to_hsize(const std::vector<std::int64_t>& v, const std::string& what) {
  std::vector<hsize_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    NPEFF_CHECK(v[i] >= 0, what, ": negative size or offset ", shape_string(v));
    out[i] = static_cast<hsize_t>(v[i]);
  }
  return out;
}

Handle make_simple_space(const std::vector<hsize_t>& dims, const hsize_t* maxdims) {
  if (dims.empty()) return checked(H5Screate(H5S_SCALAR), "H5Screate failed");
  return checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims),
                 "H5Screate_simple failed");
}

namespace {

void reclaim_vlen(hid_t memtype, hid_t space, void* buf) {
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(memtype, space, H5P_DEFAULT, buf);
#else
  H5Dvlen_reclaim(memtype, space, H5P_DEFAULT, buf);
#endif
}

}  // namespace

// Reads every string of a string-typed attribute (is_attr) or dataset.
std::vector<std::string> read_string_values(hid_t id, bool is_attr, const std::string& what) {
  Handle type =
      checked_read(is_attr ? H5Aget_type(id) : H5Dget_type(id), what + ": cannot read type", "");
  Handle space =
      checked_read(is_attr ? H5Aget_space(id) : H5Dget_space(id), what + ": cannot read shape", "");
  NPEFF_CHECK(H5Tget_class(type.get()) == H5T_STRING, what, " has dtype ",
              describe_type(type.get()), ", expected string");
  const SpaceInfo info = space_info(space.get(), what);
  const std::size_t n = static_cast<std::size_t>(info.npoints);
  std::vector<std::string> out;
  if (n == 0) return out;
  out.reserve(n);
  const H5T_cset_t cset = H5Tget_cset(type.get());
  const auto read = [&](hid_t memtype, void* buf) {
    const herr_t rc = is_attr ? H5Aread(id, memtype, buf)
                              : H5Dread(id, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (rc < 0)
      NPEFF_FAIL(what, " could not be read", unreadable_detail(": file truncated or corrupt"));
  };
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle memtype = make_vlen_string_type(cset);
    std::vector<char*> buf(n, nullptr);
    read(memtype.get(), buf.data());
    for (char* s : buf) out.emplace_back(s ? s : "");
    reclaim_vlen(memtype.get(), space.get(), buf.data());
  } else {
    const std::size_t size = H5Tget_size(type.get());
    NPEFF_CHECK(size > 0, what, ": string type of size 0 (corrupt file?)");
    Handle memtype = copy_type(type.get());
    std::vector<char> buf(n * size, '\0');
    read(memtype.get(), buf.data());
    const bool space_pad = H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD;
    for (std::size_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * size, size);
      const std::size_t nul = s.find('\0');
      if (nul != std::string::npos) s.resize(nul);
      if (space_pad) s.erase(s.find_last_not_of(' ') + 1);
      out.push_back(std::move(s));
    }
  }
  return out;
}

// fsync a file or folder (hdf5_internal.h).
void fsync_path(const std::string& path, bool required) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    NPEFF_CHECK(!required, path, ": cannot open for syncing: ", std::strerror(errno));
    return;
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  NPEFF_CHECK(rc == 0 || !required, path, ": cannot sync to disk: ", std::strerror(err));
}

}  // namespace detail

namespace {

namespace fs = std::filesystem;

using detail::checked;
using detail::checked_read;
using detail::hdf5_detail;

void close_id(hid_t id) noexcept {
  if (id < 0) return;
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      H5Fclose(id);
      break;
    case H5I_GROUP:
      H5Gclose(id);
      break;
    case H5I_DATASET:
      H5Dclose(id);
      break;
    case H5I_DATASPACE:
      H5Sclose(id);
      break;
    case H5I_DATATYPE:
      H5Tclose(id);
      break;
    case H5I_ATTR:
      H5Aclose(id);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id);
      break;
    default:
      break;  // already closed (e.g. by a strong file close) or not ours
  }
}

// ---- Files ---------------------------------------------------------------------------------

Handle make_write_fapl() {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate failed");
  // 1.8 file format (readable by every HDF5 >= 1.8, allows large attributes); a strong close so
  // that commit() really closes every object before the rename.
  if (H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0 ||
      H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0) {
    NPEFF_ASSERT(false, "cannot set HDF5 file access properties", hdf5_detail());
  }
  return fapl;
}

Group open_root(hid_t file, const std::string& name) {
  Handle root =
      checked_read(H5Gopen2(file, "/", H5P_DEFAULT), name + ": cannot open the root group",
                   " (truncated or corrupt HDF5 file?)");
  return Group(std::move(root), "/", name);
}

void check_readable_hdf5(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  NPEFF_CHECK(fs::exists(st), path, ": no such file");
  NPEFF_CHECK(!fs::is_directory(st), path, ": is a directory, not an HDF5 file");
  NPEFF_CHECK(::access(path.c_str(), R_OK) == 0, path, ": cannot read: ", std::strerror(errno));
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 <= 0) {
    NPEFF_FAIL(path, ": is not an HDF5 file", is_hdf5 < 0 ? hdf5_detail() : std::string());
  }
}

}  // namespace

// ---- Free functions ------------------------------------------------------------------------

std::string to_string(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kFloat16:
      return "float16";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kUInt8:
      return "uint8";
    case DType::kString:
      return "string";
  }
  return "unknown";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kFloat16:
      return 2;
    case DType::kUInt8:
      return 1;
    case DType::kString:
      return 0;
  }
  return 0;
}

void silence_hdf5_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// ---- Handle --------------------------------------------------------------------------------

Handle::~Handle() {
  close_id(id_);
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    close_id(id_);
    id_ = other.release();
  }
  return *this;
}

// ---- File ----------------------------------------------------------------------------------

File::~File() {
  try {
    close();
  } catch (...) {
    // Destructors must not throw; close() already removed what it could.
  }
}

File::File(File&& other) noexcept
    : file_(std::move(other.file_)),
      root_(std::move(other.root_)),
      path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      keep_partial_(other.keep_partial_) {
  other.temp_path_.clear();
  other.keep_partial_ = false;
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (...) {
    }
    file_ = std::move(other.file_);
    root_ = std::move(other.root_);
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    keep_partial_ = other.keep_partial_;
    other.temp_path_.clear();
    other.keep_partial_ = false;
  }
  return *this;
}

std::string File::temp_path(const std::string& final_path) {
  return final_path + ".partial";
}

File File::open(const std::string& path, OpenMode mode) {
  silence_hdf5_errors();
  check_readable_hdf5(path);
  if (mode == OpenMode::kReadWrite) {
    NPEFF_CHECK(::access(path.c_str(), W_OK) == 0, path,
                ": cannot open for writing: ", std::strerror(errno));
  }
  const hid_t id =
      H5Fopen(path.c_str(), mode == OpenMode::kRead ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
  if (id < 0) NPEFF_FAIL(path, ": cannot open", detail::open_failure_detail(path));
  File file;
  file.file_ = Handle(id);
  file.path_ = path;
  file.root_ = open_root(id, path);
  return file;
}

File File::create(const std::string& path) {
  silence_hdf5_errors();
  std::error_code ec;
  NPEFF_CHECK(!fs::is_directory(path, ec), path, ": is a directory");
  const std::string temp = temp_path(path);
  std::remove(temp.c_str());  // a stale partial file from an earlier run
  Handle fapl = make_write_fapl();
  const hid_t id = H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  if (id < 0) {
    NPEFF_FAIL(path, ": cannot create ", temp, " (does the directory exist and is it writable?)",
               hdf5_detail());
  }
  File file;
  file.file_ = Handle(id);
  file.path_ = path;
  file.temp_path_ = temp;
  file.root_ = open_root(id, path);
  return file;
}

File File::resume(const std::string& path) {
  silence_hdf5_errors();
  const std::string temp = temp_path(path);
  std::error_code ec;
  if (!fs::exists(temp, ec)) return File();
  const std::string hint = " (delete it to start over)";
  try {
    check_readable_hdf5(temp);
  } catch (const Error& e) {
    NPEFF_FAIL("cannot resume the partial file left by an earlier run: ", e.what(), hint);
  }
  NPEFF_CHECK(::access(temp.c_str(), W_OK) == 0, temp,
              ": cannot open for writing: ", std::strerror(errno));
  Handle fapl = make_write_fapl();
  const hid_t id = H5Fopen(temp.c_str(), H5F_ACC_RDWR, fapl.get());
  if (id < 0) {
    NPEFF_FAIL(temp, ": cannot resume the partial file left by an earlier run (truncated or ",
               "corrupt HDF5 file?)", hint, hdf5_detail());
  }
  File file;
  file.file_ = Handle(id);
  file.path_ = path;
  file.temp_path_ = temp;
  file.keep_partial_ = true;
  file.root_ = open_root(id, path);
  return file;
}

void File::flush() {
  NPEFF_ASSERT(valid(), "flush() on a closed file");
  unsigned intent = 0;
  if (H5Fget_intent(file_.get(), &intent) < 0 || !(intent & H5F_ACC_RDWR)) return;
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) {
    NPEFF_FAIL(path_, ": cannot write ", temp_path_.empty() ? path_ : temp_path_, " (disk full?)",
               hdf5_detail());
  }
}

void File::commit() {
  NPEFF_ASSERT(valid() && !temp_path_.empty(),
               "commit() needs a file from File::create or File::resume (", path_, ")");
  flush();
  root_ = Group();
  // Strong close degree: this also closes every group/dataset still open in the file.
  if (H5Fclose(file_.release()) < 0) {
    NPEFF_FAIL(path_, ": cannot finish writing ", temp_path_, " (disk full?)", hdf5_detail());
  }
  detail::fsync_path(temp_path_, true);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    NPEFF_FAIL(path_, ": cannot rename ", temp_path_, " into place: ", std::strerror(errno));
  }
  temp_path_.clear();
  keep_partial_ = false;
  const fs::path dir = fs::path(path_).parent_path();
  detail::fsync_path(dir.empty() ? "." : dir.string(), false);
}

void File::close() {
  root_ = Group();
  herr_t rc = 0;
  if (file_.valid()) rc = H5Fclose(file_.release());
  const std::string detail = rc < 0 ? hdf5_detail() : std::string();
  const bool was_writing = !temp_path_.empty();
  if (was_writing && !keep_partial_) std::remove(temp_path_.c_str());
  temp_path_.clear();
  keep_partial_ = false;
  NPEFF_CHECK(rc >= 0 || !was_writing, path_, ": error while closing the file", detail);
}

}  // namespace npeff::io
