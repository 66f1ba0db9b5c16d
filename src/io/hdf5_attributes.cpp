// Object's attribute methods (see include/npeff/io/hdf5.h); the rest of the HDF5 layer is in
// hdf5.cpp and hdf5_dataset.cpp.
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "io/hdf5_internal.h"
#include "npeff/core/error.h"
#include "npeff/io/hdf5.h"

namespace npeff::io {
namespace {

using detail::checked;
using detail::checked_read;
using detail::copy_type;
using detail::describe_type;
using detail::hdf5_detail;
using detail::is_numeric_class;
using detail::make_simple_space;
using detail::make_vlen_string_type;
using detail::read_string_values;
using detail::space_info;
using detail::unreadable_detail;
using detail::where;

// Most values attr_display shows for an array attribute, and most characters of a string.
constexpr std::size_t kDisplayMaxValues = 16;
constexpr std::size_t kDisplayMaxChars = 200;

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
  if (exists < 0) NPEFF_FAIL(a.what, ": cannot be looked up", unreadable_detail());
  NPEFF_CHECK(exists > 0, where(o), " has no attribute '", name, "'");
  a.attr = checked_read(H5Aopen(o.id(), name.c_str(), H5P_DEFAULT), a.what + ": cannot be opened");
  a.type = checked_read(H5Aget_type(a.attr.get()), a.what + ": cannot read its type");
  a.space = checked_read(H5Aget_space(a.attr.get()), a.what + ": cannot read its shape");
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
    NPEFF_FAIL(a.what, " could not be read", unreadable_detail(": file truncated or corrupt"));
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

}  // namespace

// ---- Object --------------------------------------------------------------------------------

bool Object::has_attr(const std::string& name) const {
  const htri_t exists = H5Aexists(id(), name.c_str());
  if (exists < 0) {
    NPEFF_FAIL(where(*this), ": cannot look up attribute '", name, "'", unreadable_detail());
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
  if (rc < 0) NPEFF_FAIL(where(*this), ": cannot list attributes", unreadable_detail());
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

}  // namespace npeff::io
