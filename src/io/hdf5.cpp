// RAII layer over the HDF5 C API (see include/npeff/io/hdf5.h and docs/formats.md).
#include "npeff/io/hdf5.h"

#include <fcntl.h>
#include <unistd.h>

#include <hdf5.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <utility>

#include "npeff/core/error.h"

static_assert(std::is_same<hid_t, std::int64_t>::value,
              "npeff::io::Handle stores hid_t as int64_t (HDF5 >= 1.10)");

namespace npeff::io {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kChunkTargetBytes = std::size_t{1} << 20;
// Per-dataset chunk cache: several ~1 MiB chunks, so that appending a few rows at a time to a
// compressed chunk does not re-read and re-compress it on every call.
constexpr std::size_t kChunkCacheBytes = std::size_t{16} << 20;
constexpr std::size_t kChunkCacheSlots = 12421;
// Most values attr_display shows for an array attribute, and most characters of a string.
constexpr std::size_t kDisplayMaxValues = 16;
constexpr std::size_t kDisplayMaxChars = 200;

// The most specific message on HDF5's error stack (e.g. "truncated file: eof = ..."), formatted
// as " [HDF5: ...]", or "" when there is none. Must be called right after the failing call.
std::string hdf5_detail() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* data) -> herr_t {
        if (n == 0 && err != nullptr && err->desc != nullptr) {
          *static_cast<std::string*>(data) = err->desc;
        }
        return 0;
      },
      &detail);
  H5Eclear2(H5E_DEFAULT);
  return detail.empty() ? std::string() : " [HDF5: " + detail + "]";
}

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

// Shortest decimal text that reads back as the same double (or float, for 4-byte values).
std::string format_double(double v, bool single = false) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (single ? std::strtof(buf, nullptr) == static_cast<float>(v)
               : std::strtod(buf, nullptr) == v) {
      break;
    }
  }
  return buf;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  const std::size_t n = std::min(s.size(), kDisplayMaxChars);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += "\"";
  if (s.size() > n) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

// ---- Types ---------------------------------------------------------------------------------

Handle checked(hid_t id, const std::string& what) {
  if (id < 0) NPEFF_FAIL(what, hdf5_detail());
  return Handle(id);
}

Handle copy_type(hid_t predefined) {
  return checked(H5Tcopy(predefined), "H5Tcopy failed");
}

// IEEE 754 half precision, little-endian; the same definition h5py uses for numpy.float16.
Handle make_half_type() {
  Handle t = copy_type(H5T_IEEE_F32LE);
  if (H5Tset_fields(t.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(t.get(), 2) < 0 ||
      H5Tset_ebias(t.get(), 15) < 0) {
    NPEFF_ASSERT(false, "cannot define the float16 HDF5 type", hdf5_detail());
  }
  return t;
}

Handle make_vlen_string_type(H5T_cset_t cset = H5T_CSET_UTF8) {
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

struct SpaceInfo {
  std::vector<hsize_t> dims;
  std::vector<hsize_t> maxdims;
  hssize_t npoints = 0;
};

SpaceInfo space_info(hid_t space, const std::string& what) {
  SpaceInfo info;
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) NPEFF_FAIL(what, ": cannot read its shape (corrupt file?)", hdf5_detail());
  info.dims.resize(rank);
  info.maxdims.resize(rank);
  if (rank > 0 && H5Sget_simple_extent_dims(space, info.dims.data(), info.maxdims.data()) < 0) {
    NPEFF_FAIL(what, ": cannot read its shape (corrupt file?)", hdf5_detail());
  }
  info.npoints = H5Sget_simple_extent_npoints(space);
  if (info.npoints < 0) NPEFF_FAIL(what, ": cannot read its shape (corrupt file?)", hdf5_detail());
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

Handle make_simple_space(const std::vector<hsize_t>& dims, const hsize_t* maxdims = nullptr) {
  if (dims.empty()) return checked(H5Screate(H5S_SCALAR), "H5Screate failed");
  return checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims),
                 "H5Screate_simple failed");
}

void reclaim_vlen(hid_t memtype, hid_t space, void* buf) {
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(memtype, space, H5P_DEFAULT, buf);
#else
  H5Dvlen_reclaim(memtype, space, H5P_DEFAULT, buf);
#endif
}

// Reads every string of a string-typed attribute (is_attr) or dataset.
std::vector<std::string> read_string_values(hid_t id, bool is_attr, const std::string& what) {
  Handle type = checked(is_attr ? H5Aget_type(id) : H5Dget_type(id), what + ": cannot read type");
  Handle space =
      checked(is_attr ? H5Aget_space(id) : H5Dget_space(id), what + ": cannot read shape");
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
    if (rc < 0) NPEFF_FAIL(what, " could not be read: file truncated or corrupt", hdf5_detail());
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

// ---- Attributes ----------------------------------------------------------------------------

struct Attr {
  Handle attr;
  Handle type;
  Handle space;
  H5T_class_t cls = H5T_NO_CLASS;
  hssize_t npoints = 0;
  std::string what;  // "<file>: <path>: attribute 'name'"
};

Attr open_attr(const Object& o, const std::string& name) {
  Attr a;
  a.what = where(o) + ": attribute '" + name + "'";
  const htri_t exists = H5Aexists(o.id(), name.c_str());
  if (exists < 0) NPEFF_FAIL(a.what, ": cannot be looked up (corrupt file?)", hdf5_detail());
  NPEFF_CHECK(exists > 0, where(o), " has no attribute '", name, "'");
  a.attr = checked(H5Aopen(o.id(), name.c_str(), H5P_DEFAULT),
                   a.what + ": cannot be opened (corrupt file?)");
  a.type = checked(H5Aget_type(a.attr.get()), a.what + ": cannot read its type (corrupt file?)");
  a.space = checked(H5Aget_space(a.attr.get()), a.what + ": cannot read its shape (corrupt file?)");
  a.cls = H5Tget_class(a.type.get());
  a.npoints = space_info(a.space.get(), a.what).npoints;
  return a;
}

void expect_class(const Attr& a, bool ok, const char* expected) {
  NPEFF_CHECK(ok, a.what, " is ", describe_type(a.type.get()), ", expected ", expected);
}

void expect_single(const Attr& a) {
  NPEFF_CHECK(a.npoints == 1, a.what, " holds ", a.npoints, " values, expected a single value");
}

template <typename T>
std::vector<T> read_attr_values(const Attr& a, hid_t memtype) {
  std::vector<T> out(static_cast<std::size_t>(a.npoints));
  if (out.empty()) return out;
  if (H5Aread(a.attr.get(), memtype, out.data()) < 0) {
    NPEFF_FAIL(a.what, " could not be read: file truncated or corrupt", hdf5_detail());
  }
  return out;
}

std::vector<std::int64_t> read_attr_int64(const Attr& a) {
  expect_class(a, a.cls == H5T_INTEGER, "an integer");
  if (H5Tget_sign(a.type.get()) == H5T_SGN_NONE) {
    std::vector<std::uint64_t> u = read_attr_values<std::uint64_t>(a, H5T_NATIVE_UINT64);
    std::vector<std::int64_t> out;
    out.reserve(u.size());
    for (std::uint64_t v : u) {
      NPEFF_CHECK(v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), a.what,
                  " = ", v, " does not fit a signed 64-bit integer");
      out.push_back(static_cast<std::int64_t>(v));
    }
    return out;
  }
  return read_attr_values<std::int64_t>(a, H5T_NATIVE_INT64);
}

std::vector<double> read_attr_double(const Attr& a) {
  expect_class(a, is_numeric_class(a.cls), "a number");
  return read_attr_values<double>(a, H5T_NATIVE_DOUBLE);
}

void write_attr(Object& o, const std::string& name, hid_t ftype, hid_t space, hid_t memtype,
                const void* buf) {
  const std::string what = where(o) + ": cannot write attribute '" + name + "'";
  const htri_t exists = H5Aexists(o.id(), name.c_str());
  if (exists < 0) NPEFF_FAIL(what, hdf5_detail());
  if (exists > 0 && H5Adelete(o.id(), name.c_str()) < 0) {
    NPEFF_FAIL(what, " (file opened read-only?)", hdf5_detail());
  }
  Handle attr = checked(H5Acreate2(o.id(), name.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT),
                        what + " (file opened read-only?)");
  if (buf != nullptr && H5Awrite(attr.get(), memtype, buf) < 0) {
    NPEFF_FAIL(what, " (disk full?)", hdf5_detail());
  }
}

template <typename T>
void write_attr_array(Object& o, const std::string& name, hid_t ftype_pre, hid_t memtype,
                      const std::vector<T>& values) {
  Handle ftype = copy_type(ftype_pre);
  Handle space = make_simple_space({static_cast<hsize_t>(values.size())});
  write_attr(o, name, ftype.get(), space.get(), memtype, values.empty() ? nullptr : values.data());
}

template <typename T>
void write_attr_scalar(Object& o, const std::string& name, hid_t ftype_pre, hid_t memtype,
                       T value) {
  Handle ftype = copy_type(ftype_pre);
  Handle space = make_simple_space({});
  write_attr(o, name, ftype.get(), space.get(), memtype, &value);
}

template <typename T, typename F>
std::string display_list(const std::vector<T>& values, bool scalar, F&& fmt) {
  if (scalar && values.size() == 1) return fmt(values[0]);
  std::string out = "[";
  const std::size_t n = std::min(values.size(), kDisplayMaxValues);
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    out += fmt(values[i]);
  }
  if (values.size() > n) out += ", ... (" + std::to_string(values.size()) + " values)";
  return out + "]";
}

// ---- Datasets ------------------------------------------------------------------------------

std::string ds_what(const Dataset& d) {
  return d.file_name() + ": dataset " + d.path();
}

// Name of the first filter of `d`'s pipeline that this HDF5 library lacks (e.g. h5py's "lzf"),
// or "" when every filter is available.
std::string missing_filter(const Dataset& d) {
  const hid_t dcpl = H5Dget_create_plist(d.id());
  if (dcpl < 0) return "";
  Handle owner(dcpl);
  const int n = H5Pget_nfilters(dcpl);
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    std::size_t nvalues = 0;
    char name[64] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nvalues,
                                           nullptr, sizeof name, name, nullptr);
    if (id >= 0 && H5Zfilter_avail(id) <= 0) {
      return (name[0] ? std::string(name) : std::string("unnamed")) + " (filter id " +
             std::to_string(id) + ")";
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return "";
}

[[noreturn]] void fail_read(const Dataset& d) {
  const std::string detail = hdf5_detail();
  const std::string filter = missing_filter(d);
  NPEFF_CHECK(filter.empty(), ds_what(d), " could not be read: it is compressed with the HDF5 ",
              "filter ", filter, ", which this HDF5 library does not provide");
  NPEFF_FAIL(ds_what(d), " could not be read: file truncated or corrupt", detail);
}

[[noreturn]] void fail_write(const Dataset& d) {
  NPEFF_FAIL(ds_what(d), ": cannot write (file opened read-only or disk full?)", hdf5_detail());
}

void expect_numeric(const Dataset& d) {
  Handle type = checked(H5Dget_type(d.id()), ds_what(d) + ": cannot read its type");
  NPEFF_CHECK(is_numeric_class(H5Tget_class(type.get())), ds_what(d), " has dtype ",
              describe_type(type.get()), ", expected numbers");
}

SpaceInfo dataset_space(const Dataset& d) {
  Handle space = checked(H5Dget_space(d.id()), ds_what(d) + ": cannot read its shape");
  return space_info(space.get(), ds_what(d));
}

void read_all(const Dataset& d, hid_t memtype, void* data) {
  expect_numeric(d);
  if (dataset_space(d).npoints == 0) return;
  if (H5Dread(d.id(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) fail_read(d);
}

void write_all(Dataset& d, hid_t memtype, const void* data) {
  expect_numeric(d);
  if (dataset_space(d).npoints == 0) return;
  if (H5Dwrite(d.id(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) fail_write(d);
}

// File dataspace with the hyperslab [offset, offset + count) selected, after bounds checks.
Handle select_slab(const Dataset& d, const std::vector<std::int64_t>& offset,
                   const std::vector<std::int64_t>& count) {
  Handle space = checked(H5Dget_space(d.id()), ds_what(d) + ": cannot read its shape");
  const SpaceInfo info = space_info(space.get(), ds_what(d));
  const std::size_t rank = info.dims.size();
  NPEFF_CHECK(offset.size() == rank && count.size() == rank, ds_what(d), " has rank ", rank,
              ", but a slab of rank ", offset.size(), "/", count.size(), " was requested");
  std::vector<std::int64_t> shape(info.dims.begin(), info.dims.end());
  for (std::size_t i = 0; i < rank; ++i) {
    NPEFF_CHECK(offset[i] >= 0 && count[i] >= 0 && offset[i] + count[i] <= shape[i], ds_what(d),
                ": slab at ", shape_string(offset), " of size ", shape_string(count),
                " is outside its shape ", shape_string(shape));
  }
  const std::vector<hsize_t> off = to_hsize(offset, ds_what(d));
  const std::vector<hsize_t> cnt = to_hsize(count, ds_what(d));
  if (rank > 0 && H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(),
                                      nullptr) < 0) {
    NPEFF_FAIL(ds_what(d), ": cannot select slab", hdf5_detail());
  }
  return space;
}

std::size_t slab_points(const std::vector<std::int64_t>& count) {
  std::size_t n = 1;
  for (std::int64_t c : count) n *= static_cast<std::size_t>(c);
  return n;
}

void read_slab_impl(const Dataset& d, const std::vector<std::int64_t>& offset,
                    const std::vector<std::int64_t>& count, hid_t memtype, void* data) {
  expect_numeric(d);
  Handle fspace = select_slab(d, offset, count);
  if (slab_points(count) == 0) return;
  Handle mspace = make_simple_space(to_hsize(count, ds_what(d)));
  if (H5Dread(d.id(), memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data) < 0) fail_read(d);
}

void write_slab_impl(Dataset& d, const std::vector<std::int64_t>& offset,
                     const std::vector<std::int64_t>& count, hid_t memtype, const void* data) {
  expect_numeric(d);
  Handle fspace = select_slab(d, offset, count);
  if (slab_points(count) == 0) return;
  Handle mspace = make_simple_space(to_hsize(count, ds_what(d)));
  if (H5Dwrite(d.id(), memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data) < 0) {
    fail_write(d);
  }
}

SpaceInfo expect_extendible(const Dataset& d) {
  SpaceInfo info = dataset_space(d);
  NPEFF_CHECK(!info.dims.empty() && info.maxdims[0] == H5S_UNLIMITED, ds_what(d),
              " is not extendible along dim 0 (it was not created with extendible = true)");
  return info;
}

void append_rows_impl(Dataset& d, std::int64_t rows, hid_t memtype, const void* data) {
  NPEFF_CHECK(rows >= 0, ds_what(d), ": cannot append ", rows, " rows");
  expect_numeric(d);
  const SpaceInfo info = expect_extendible(d);
  if (rows == 0) return;
  const std::int64_t old_rows = static_cast<std::int64_t>(info.dims[0]);
  d.resize_rows(old_rows + rows);
  std::vector<std::int64_t> offset(info.dims.size(), 0);
  std::vector<std::int64_t> count(info.dims.begin(), info.dims.end());
  offset[0] = old_rows;
  count[0] = rows;
  write_slab_impl(d, offset, count, memtype, data);
}

// Chunk shape for a new dataset: about kChunkTargetBytes, whole rows when a row fits, at least
// 1 per dim, within the extent of fixed dims.
std::vector<hsize_t> auto_chunks(const std::vector<hsize_t>& dims, std::size_t elem_size,
                                 bool extendible) {
  const std::size_t rank = dims.size();
  std::vector<hsize_t> chunk(rank, 1);
  std::size_t inner_bytes = elem_size;  // bytes of one element of dims (i, rank)
  std::vector<std::size_t> inner(rank);
  for (std::size_t i = rank; i-- > 0;) {
    inner[i] = inner_bytes;
    inner_bytes *= std::max<hsize_t>(dims[i], 1);
  }
  for (std::size_t i = 0; i < rank; ++i) {
    const hsize_t extent = std::max<hsize_t>(dims[i], 1);
    if (inner[i] >= kChunkTargetBytes) {
      chunk[i] = 1;
      continue;
    }
    hsize_t c = std::max<hsize_t>(1, kChunkTargetBytes / inner[i]);
    if (!(extendible && i == 0)) c = std::min(c, extent);
    chunk[i] = c;
    for (std::size_t j = i + 1; j < rank; ++j) chunk[j] = std::max<hsize_t>(dims[j], 1);
    break;
  }
  return chunk;
}

Handle make_dapl() {
  Handle dapl = checked(H5Pcreate(H5P_DATASET_ACCESS), "H5Pcreate failed");
  H5Pset_chunk_cache(dapl.get(), kChunkCacheSlots, kChunkCacheBytes, 1.0);
  return dapl;
}

// Opens a child object and returns its id; type receives H5I_GROUP, H5I_DATASET, ...
Handle open_child(const Group& g, const std::string& name, const std::string& kind) {
  const std::string path = join_path(g.path(), name);
  if (!g.has(name)) {
    std::string listing;
    if (name.find('/') == std::string::npos) {
      std::vector<std::string> names = g.children();
      listing = " (" + g.path() + " contains: " + (names.empty() ? "nothing" : "");
      for (std::size_t i = 0; i < names.size(); ++i) listing += (i ? ", " : "") + names[i];
      listing += ")";
    }
    NPEFF_FAIL(g.file_name(), ": ", kind, " ", path, " not found", listing);
  }
  return checked(H5Oopen(g.id(), name.c_str(), H5P_DEFAULT),
                 g.file_name() + ": " + kind + " " + path + " cannot be opened (corrupt file?)");
}

const char* id_kind(H5I_type_t t) {
  switch (t) {
    case H5I_GROUP:
      return "a group";
    case H5I_DATASET:
      return "a dataset";
    case H5I_DATATYPE:
      return "a named datatype";
    default:
      return "not a group or dataset";
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
  Handle root = checked(H5Gopen2(file, "/", H5P_DEFAULT),
                        name + ": cannot open the root group (truncated or corrupt HDF5 file?)");
  return Group(std::move(root), "/", name);
}

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

// ---- Object --------------------------------------------------------------------------------

bool Object::has_attr(const std::string& name) const {
  const htri_t exists = H5Aexists(id(), name.c_str());
  if (exists < 0) {
    NPEFF_FAIL(where(*this), ": cannot look up attribute '", name, "' (corrupt file?)",
               hdf5_detail());
  }
  return exists > 0;
}

std::vector<std::string> Object::attr_names() const {
  std::vector<std::string> names;
  hsize_t idx = 0;
  const herr_t rc = H5Aiterate2(
      id(), H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
      },
      &names);
  if (rc < 0) NPEFF_FAIL(where(*this), ": cannot list attributes (corrupt file?)", hdf5_detail());
  return names;
}

void Object::set_attr(const std::string& name, const std::string& value) {
  Handle ftype = make_vlen_string_type();
  Handle space = make_simple_space({});
  const char* ptr = value.c_str();
  write_attr(*this, name, ftype.get(), space.get(), ftype.get(), &ptr);
}

void Object::set_attr(const std::string& name, std::int64_t value) {
  write_attr_scalar(*this, name, H5T_STD_I64LE, H5T_NATIVE_INT64, value);
}

void Object::set_attr(const std::string& name, std::uint64_t value) {
  write_attr_scalar(*this, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, value);
}

void Object::set_attr(const std::string& name, double value) {
  write_attr_scalar(*this, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, value);
}

void Object::set_attr(const std::string& name, const std::vector<std::int64_t>& value) {
  write_attr_array(*this, name, H5T_STD_I64LE, H5T_NATIVE_INT64, value);
}

void Object::set_attr(const std::string& name, const std::vector<double>& value) {
  write_attr_array(*this, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, value);
}

std::string Object::attr_string(const std::string& name) const {
  const Attr a = open_attr(*this, name);
  expect_class(a, a.cls == H5T_STRING, "a string");
  expect_single(a);
  return read_string_values(a.attr.get(), true, a.what).at(0);
}

std::int64_t Object::attr_int(const std::string& name) const {
  const Attr a = open_attr(*this, name);
  expect_class(a, a.cls == H5T_INTEGER, "an integer");
  expect_single(a);
  return read_attr_int64(a).at(0);
}

std::uint64_t Object::attr_uint(const std::string& name) const {
  const Attr a = open_attr(*this, name);
  expect_class(a, a.cls == H5T_INTEGER, "an unsigned integer");
  expect_single(a);
  if (H5Tget_sign(a.type.get()) != H5T_SGN_NONE) {
    const std::int64_t v = read_attr_values<std::int64_t>(a, H5T_NATIVE_INT64).at(0);
    NPEFF_CHECK(v >= 0, a.what, " = ", v, ", expected a non-negative integer");
    return static_cast<std::uint64_t>(v);
  }
  return read_attr_values<std::uint64_t>(a, H5T_NATIVE_UINT64).at(0);
}

double Object::attr_double(const std::string& name) const {
  const Attr a = open_attr(*this, name);
  expect_class(a, is_numeric_class(a.cls), "a number");
  expect_single(a);
  return read_attr_double(a).at(0);
}

std::vector<std::int64_t> Object::attr_int_vector(const std::string& name) const {
  return read_attr_int64(open_attr(*this, name));
}

std::vector<double> Object::attr_double_vector(const std::string& name) const {
  return read_attr_double(open_attr(*this, name));
}

std::string Object::attr_display(const std::string& name) const {
  const Attr a = open_attr(*this, name);
  const int rank = H5Sget_simple_extent_ndims(a.space.get());
  const bool scalar = rank == 0;
  switch (a.cls) {
    case H5T_STRING:
      return display_list(read_string_values(a.attr.get(), true, a.what), scalar, quote);
    case H5T_INTEGER:
      if (H5Tget_sign(a.type.get()) == H5T_SGN_NONE) {
        return display_list(read_attr_values<std::uint64_t>(a, H5T_NATIVE_UINT64), scalar,
                            [](std::uint64_t v) { return std::to_string(v); });
      }
      return display_list(read_attr_values<std::int64_t>(a, H5T_NATIVE_INT64), scalar,
                          [](std::int64_t v) { return std::to_string(v); });
    case H5T_FLOAT: {
      const bool single = H5Tget_size(a.type.get()) <= 4;
      return display_list(read_attr_values<double>(a, H5T_NATIVE_DOUBLE), scalar,
                          [single](double v) { return format_double(v, single); });
    }
    default:
      return "<" + describe_type(a.type.get()) + ", " + std::to_string(a.npoints) + " values>";
  }
}

// ---- Dataset -------------------------------------------------------------------------------

DType Dataset::dtype() const {
  Handle type = checked(H5Dget_type(id()), ds_what(*this) + ": cannot read its type");
  const H5T_class_t cls = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_FLOAT) {
    if (size == 2) return DType::kFloat16;
    if (size == 4) return DType::kFloat32;
    if (size == 8) return DType::kFloat64;
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type.get()) != H5T_SGN_NONE;
    if (is_signed && size == 4) return DType::kInt32;
    if (is_signed && size == 8) return DType::kInt64;
    if (!is_signed && size == 1) return DType::kUInt8;
  } else if (cls == H5T_STRING) {
    return DType::kString;
  }
  NPEFF_FAIL(ds_what(*this), " has unsupported dtype ", describe_type(type.get()),
             " (npeff reads float16/32/64, int32, int64, uint8 and string)");
}

std::vector<std::int64_t> Dataset::shape() const {
  const SpaceInfo info = dataset_space(*this);
  return std::vector<std::int64_t>(info.dims.begin(), info.dims.end());
}

std::vector<std::int64_t> Dataset::chunks() const {
  Handle dcpl = checked(H5Dget_create_plist(id()), ds_what(*this) + ": cannot read its layout");
  if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return {};
  const int rank = H5Pget_chunk(dcpl.get(), 0, nullptr);
  if (rank <= 0) NPEFF_FAIL(ds_what(*this), ": cannot read its chunk shape", hdf5_detail());
  std::vector<hsize_t> dims(rank);
  H5Pget_chunk(dcpl.get(), rank, dims.data());
  return std::vector<std::int64_t>(dims.begin(), dims.end());
}

void Dataset::expect(DType expected_dtype, const std::vector<std::int64_t>& expected_shape) const {
  const DType found = dtype();
  NPEFF_CHECK(found == expected_dtype, ds_what(*this), " has dtype ", to_string(found),
              ", expected ", to_string(expected_dtype));
  const std::vector<std::int64_t> found_shape = shape();
  bool ok = found_shape.size() == expected_shape.size();
  for (std::size_t i = 0; ok && i < found_shape.size(); ++i) {
    ok = expected_shape[i] < 0 || expected_shape[i] == found_shape[i];
  }
  NPEFF_CHECK(ok, ds_what(*this), " has shape ", shape_string(found_shape), ", expected ",
              shape_string(expected_shape));
}

void Dataset::read(float* data) const {
  read_all(*this, H5T_NATIVE_FLOAT, data);
}
void Dataset::read(double* data) const {
  read_all(*this, H5T_NATIVE_DOUBLE, data);
}
void Dataset::read(std::int64_t* data) const {
  read_all(*this, H5T_NATIVE_INT64, data);
}
void Dataset::read(std::int32_t* data) const {
  read_all(*this, H5T_NATIVE_INT32, data);
}

void Dataset::read_slab(const std::vector<std::int64_t>& offset,
                        const std::vector<std::int64_t>& count, float* data) const {
  read_slab_impl(*this, offset, count, H5T_NATIVE_FLOAT, data);
}

void Dataset::read_slab(const std::vector<std::int64_t>& offset,
                        const std::vector<std::int64_t>& count, double* data) const {
  read_slab_impl(*this, offset, count, H5T_NATIVE_DOUBLE, data);
}

void Dataset::write(const float* data) {
  write_all(*this, H5T_NATIVE_FLOAT, data);
}
void Dataset::write(const double* data) {
  write_all(*this, H5T_NATIVE_DOUBLE, data);
}
void Dataset::write(const std::int64_t* data) {
  write_all(*this, H5T_NATIVE_INT64, data);
}
void Dataset::write(const std::int32_t* data) {
  write_all(*this, H5T_NATIVE_INT32, data);
}

void Dataset::write_slab(const std::vector<std::int64_t>& offset,
                         const std::vector<std::int64_t>& count, const float* data) {
  write_slab_impl(*this, offset, count, H5T_NATIVE_FLOAT, data);
}

void Dataset::append_rows(std::int64_t rows, const float* data) {
  append_rows_impl(*this, rows, H5T_NATIVE_FLOAT, data);
}

void Dataset::append_rows(std::int64_t rows, const std::int64_t* data) {
  append_rows_impl(*this, rows, H5T_NATIVE_INT64, data);
}

void Dataset::resize_rows(std::int64_t rows) {
  NPEFF_CHECK(rows >= 0, ds_what(*this), ": cannot resize to ", rows, " rows");
  SpaceInfo info = expect_extendible(*this);
  info.dims[0] = static_cast<hsize_t>(rows);
  if (H5Dset_extent(id(), info.dims.data()) < 0) {
    NPEFF_FAIL(ds_what(*this), ": cannot resize to ", rows,
               " rows (file opened read-only or disk full?)", hdf5_detail());
  }
}

std::vector<std::string> Dataset::read_strings() const {
  return read_string_values(id(), false, ds_what(*this));
}

// ---- Group ---------------------------------------------------------------------------------

bool Group::has(const std::string& name) const {
  NPEFF_CHECK(!name.empty(), where(*this), ": empty object name");
  // H5Lexists needs every intermediate link to exist, so test each prefix in turn.
  std::size_t pos = name[0] == '/' ? 1 : 0;
  while (true) {
    const std::size_t slash = name.find('/', pos);
    const std::string prefix = name.substr(0, slash);
    if (!prefix.empty() && prefix != "/") {
      if (H5Lexists(id(), prefix.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

std::vector<std::string> Group::children() const {
  std::vector<std::string> names;
  hsize_t idx = 0;
  const herr_t rc = H5Literate(
      id(), H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
      },
      &names);
  if (rc < 0) NPEFF_FAIL(where(*this), ": cannot list members (corrupt file?)", hdf5_detail());
  return names;
}

bool Group::is_group(const std::string& name) const {
  if (!has(name)) return false;
  const hid_t obj = H5Oopen(id(), name.c_str(), H5P_DEFAULT);
  if (obj < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  Handle h(obj);
  return H5Iget_type(obj) == H5I_GROUP;
}

Group Group::group(const std::string& name) const {
  Handle obj = open_child(*this, name, "group");
  const H5I_type_t type = H5Iget_type(obj.get());
  const std::string path = join_path(path_, name);
  NPEFF_CHECK(type == H5I_GROUP, file_name_, ": ", path, " is ", id_kind(type),
              ", expected a group");
  return Group(std::move(obj), path, file_name_);
}

Group Group::create_group(const std::string& name) {
  const std::string path = join_path(path_, name);
  NPEFF_CHECK(!has(name), file_name_, ": cannot create group ", path, ": it already exists");
  Handle lcpl = checked(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate failed");
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle gcpl = checked(H5Pcreate(H5P_GROUP_CREATE), "H5Pcreate failed");
  H5Pset_obj_track_times(gcpl.get(), 0);
  Handle g = checked(H5Gcreate2(id(), name.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT),
                     file_name_ + ": cannot create group " + path + " (file opened read-only?)");
  return Group(std::move(g), path, file_name_);
}

Group Group::require_group(const std::string& name) {
  return has(name) ? group(name) : create_group(name);
}

Dataset Group::dataset(const std::string& name) const {
  const std::string path = join_path(path_, name);
  {
    Handle obj = open_child(*this, name, "dataset");
    const H5I_type_t type = H5Iget_type(obj.get());
    NPEFF_CHECK(type == H5I_DATASET, file_name_, ": ", path, " is ", id_kind(type),
                ", expected a dataset");
  }
  Handle dapl = make_dapl();
  Handle ds = checked(H5Dopen2(id(), name.c_str(), dapl.get()),
                      file_name_ + ": dataset " + path + " cannot be opened (corrupt file?)");
  return Dataset(std::move(ds), path, file_name_);
}

Dataset Group::create_dataset(const std::string& name, DType dtype,
                              const std::vector<std::int64_t>& shape,
                              const DatasetOptions& options) {
  const std::string path = join_path(path_, name);
  const std::string what = file_name_ + ": cannot create dataset " + path;
  NPEFF_ASSERT(dtype != DType::kString, "use create_strings for string datasets (", path, ")");
  NPEFF_CHECK(!has(name), what, ": it already exists");
  NPEFF_CHECK(options.compression >= 0 && options.compression <= 9, what, ": compression level ",
              options.compression, " is not in 0..9");
  NPEFF_CHECK(!options.extendible || !shape.empty(), what, ": a scalar cannot be extendible");
  const std::vector<hsize_t> dims = to_hsize(shape, what);
  const std::size_t rank = dims.size();

  std::vector<hsize_t> maxdims = dims;
  if (options.extendible) maxdims[0] = H5S_UNLIMITED;
  Handle space = make_simple_space(dims, rank ? maxdims.data() : nullptr);

  Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate failed");
  H5Pset_obj_track_times(dcpl.get(), 0);
  // Chunking needs rank >= 1 and a nonzero extent in every fixed dim.
  bool chunked = rank > 0;
  for (std::size_t i = 0; i < rank; ++i) {
    if (dims[i] == 0 && !(options.extendible && i == 0)) chunked = false;
  }
  NPEFF_CHECK(chunked || !options.extendible, what,
              ": an extendible dataset needs a nonzero extent in dims 1..");
  if (chunked) {
    std::vector<hsize_t> chunk;
    if (options.chunks.empty()) {
      chunk = auto_chunks(dims, dtype_size(dtype), options.extendible);
    } else {
      NPEFF_CHECK(options.chunks.size() == rank, what, ": chunk shape ",
                  shape_string(options.chunks), " does not match rank ", rank);
      for (std::size_t i = 0; i < rank; ++i) {
        NPEFF_CHECK(options.chunks[i] > 0, what, ": chunk shape ", shape_string(options.chunks),
                    " must be positive");
        chunk.push_back(static_cast<hsize_t>(options.chunks[i]));
        if (!(options.extendible && i == 0)) chunk[i] = std::min(chunk[i], dims[i]);
      }
    }
    if (H5Pset_chunk(dcpl.get(), static_cast<int>(rank), chunk.data()) < 0) {
      NPEFF_FAIL(what, ": invalid chunk shape", hdf5_detail());
    }
    if (options.compression > 0) {
      NPEFF_CHECK(H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0, what,
                  ": this HDF5 library has no deflate filter");
      if (H5Pset_shuffle(dcpl.get()) < 0 ||
          H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.compression)) < 0) {
        NPEFF_FAIL(what, ": cannot enable compression", hdf5_detail());
      }
    }
  }

  Handle lcpl = checked(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate failed");
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle ftype = file_type(dtype);
  Handle dapl = make_dapl();
  Handle ds = checked(
      H5Dcreate2(id(), name.c_str(), ftype.get(), space.get(), lcpl.get(), dcpl.get(), dapl.get()),
      what + " (file opened read-only or disk full?)");
  return Dataset(std::move(ds), path, file_name_);
}

Dataset Group::create_strings(const std::string& name, const std::vector<std::string>& values) {
  const std::string path = join_path(path_, name);
  const std::string what = file_name_ + ": cannot create dataset " + path;
  NPEFF_CHECK(!has(name), what, ": it already exists");
  Handle ftype = make_vlen_string_type();
  Handle space = make_simple_space({static_cast<hsize_t>(values.size())});
  Handle lcpl = checked(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate failed");
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate failed");
  H5Pset_obj_track_times(dcpl.get(), 0);
  Handle ds = checked(
      H5Dcreate2(id(), name.c_str(), ftype.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
      what + " (file opened read-only or disk full?)");
  Dataset dataset(std::move(ds), path, file_name_);
  if (!values.empty()) {
    std::vector<const char*> ptrs;
    ptrs.reserve(values.size());
    for (const std::string& v : values) ptrs.push_back(v.c_str());
    if (H5Dwrite(dataset.id(), ftype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
      fail_write(dataset);
    }
  }
  return dataset;
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
  if (id < 0) NPEFF_FAIL(path, ": cannot open (truncated or corrupt HDF5 file?)", hdf5_detail());
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
  fsync_path(temp_path_, true);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    NPEFF_FAIL(path_, ": cannot rename ", temp_path_, " into place: ", std::strerror(errno));
  }
  temp_path_.clear();
  keep_partial_ = false;
  const fs::path dir = fs::path(path_).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), false);
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
