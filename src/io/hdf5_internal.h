// Helpers shared by the files implementing npeff/io/hdf5.h (hdf5.cpp, hdf5_attributes.cpp,
// hdf5_dataset.cpp). Private to npeff_core; defined in hdf5.cpp.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "npeff/io/hdf5.h"

namespace npeff::io::detail {

// The most specific message on HDF5's error stack (e.g. "truncated file: eof = ..."), formatted
// as " [HDF5: ...]", or "" when there is none. Must be called right after the failing call.
std::string hdf5_detail();

// fsync a file or folder; throws npeff::Error when that fails and `required` (folders: best
// effort, some file systems refuse).
void fsync_path(const std::string& path, bool required);

std::string join_path(const std::string& parent, const std::string& name);
// "<file>: <path>", the prefix of error messages about `o`.
std::string where(const Object& o);
// "[2, 3]", with "*" for negative (unconstrained) dims.
std::string shape_string(const std::vector<std::int64_t>& shape);

// ---- Types ---------------------------------------------------------------------------------

// Owns `id`; throws npeff::Error(what + HDF5 detail) if it is negative.
Handle checked(hid_t id, const std::string& what);
Handle copy_type(hid_t predefined);
Handle make_vlen_string_type(H5T_cset_t cset = H5T_CSET_UTF8);
// The on-disk HDF5 type npeff writes for `dtype`.
Handle file_type(DType dtype);
// A human-readable name for any HDF5 datatype: "float32", "int16", "string", "compound"...
std::string describe_type(hid_t type);
bool is_numeric_class(H5T_class_t cls);

// ---- Dataspaces ----------------------------------------------------------------------------

struct SpaceInfo {
  std::vector<hsize_t> dims;
  std::vector<hsize_t> maxdims;
  hssize_t npoints = 0;
};

SpaceInfo space_info(hid_t space, const std::string& what);
std::vector<hsize_t> to_hsize(const std::vector<std::int64_t>& v, const std::string& what);
Handle make_simple_space(const std::vector<hsize_t>& dims, const hsize_t* maxdims = nullptr);

// Reads every string of a string-typed attribute (is_attr) or dataset.
std::vector<std::string> read_string_values(hid_t id, bool is_attr, const std::string& what);

}  // namespace npeff::io::detail
