// Helpers shared by the files implementing npeff/io/hdf5.h (hdf5.cpp, hdf5_attributes.cpp,
// hdf5_dataset.cpp, hdf5_errors.cpp). Private to npeff_core; defined in hdf5.cpp and
// hdf5_errors.cpp.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "npeff/io/hdf5.h"

namespace npeff::io::detail {

// ---- Errors (hdf5_errors.cpp) ----------------------------------------------------------------

// The most specific message on HDF5's error stack (e.g. "truncated file: eof = ..."), formatted
// as " [HDF5: ...]", or "" when there is none. Must be called right after the failing call.
std::string hdf5_detail();

// Why a failed HDF5 read call failed, for a message, in place of `corrupt_hint` + hdf5_detail():
// when HDF5 refused a structure for its version number ("bad version number for layout
// message", "bad superblock version number": the file was written by a newer HDF5 in a newer
// file format), ": the file is HDF5 in a newer file format than this npeff reads (...)" with the
// fix (`found`, e.g. "superblock version 4; ", is named in it); otherwise `corrupt_hint` +
// hdf5_detail(). Must be called right after the failing call.
std::string unreadable_detail(const std::string& corrupt_hint = " (corrupt file?)",
                              const std::string& found = "");
// "1.10.8": the HDF5 library this npeff runs with.
std::string hdf5_library_version();
// unreadable_detail() for a failed H5Fopen of `path`, naming a superblock version newer than
// this HDF5 reads.
std::string open_failure_detail(const std::string& path);
// checked() for reading from a file: throws npeff::Error(what + unreadable_detail(corrupt_hint)).
Handle checked_read(hid_t id, const std::string& what,
                    const std::string& corrupt_hint = " (corrupt file?)");

// ---- Files (hdf5.cpp) ------------------------------------------------------------------------

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
