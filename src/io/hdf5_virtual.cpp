// Virtual datasets (HDF5 VDS, 1.10+; see include/npeff/io/hdf5.h): how compute-pefs and
// merge-pefs write each PEF once (docs/formats.md, "Part files"). Only the form npeff needs: a
// dataset whose rows are the whole datasets of other files, stacked in order.
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5_internal.h"
#include "npeff/core/error.h"
#include "npeff/io/hdf5.h"

namespace npeff::io {
namespace {

using detail::checked;
using detail::checked_read;
using detail::file_type;
using detail::join_path;
using detail::make_simple_space;
using detail::shape_string;
using detail::to_hsize;
using detail::where;

// Reads one string property of mapping i (H5Pget_virtual_filename / _dsetname) whole.
template <typename Getter>
std::string mapping_string(Getter get, hid_t dcpl, size_t i, const std::string& what) {
  const ssize_t n = get(dcpl, i, nullptr, 0);
  if (n < 0) NPEFF_FAIL(what, ": cannot read virtual mapping ", i, detail::hdf5_detail());
  std::string s(static_cast<size_t>(n) + 1, '\0');
  get(dcpl, i, s.data(), s.size());
  s.resize(static_cast<size_t>(n));
  return s;
}

// HDF5 reads a source name as a printf-like pattern ("%b": block number); a literal '%' is "%%".
std::string escape_percent(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}
std::string unescape_percent(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    out += s[i];
    if (s[i] == '%' && i + 1 < s.size() && s[i + 1] == '%') ++i;
  }
  return out;
}

}  // namespace

bool Dataset::is_virtual() const {
  Handle dcpl = checked_read(H5Dget_create_plist(id()), where(*this) + ": cannot read its layout");
  return H5Pget_layout(dcpl.get()) == H5D_VIRTUAL;
}

std::vector<VirtualSource> Dataset::virtual_sources() const {
  const std::string what = where(*this);
  Handle dcpl = checked_read(H5Dget_create_plist(id()), what + ": cannot read its layout");
  if (H5Pget_layout(dcpl.get()) != H5D_VIRTUAL) return {};
  size_t count = 0;
  if (H5Pget_virtual_count(dcpl.get(), &count) < 0)
    NPEFF_FAIL(what, ": cannot read its virtual mappings", detail::hdf5_detail());
  const std::vector<std::int64_t> own = shape();
  std::int64_t row_elems = 1;
  for (size_t k = 1; k < own.size(); ++k) row_elems *= own[k];
  std::vector<VirtualSource> out;
  for (size_t i = 0; i < count; ++i) {
    VirtualSource s;
    s.file = unescape_percent(mapping_string(H5Pget_virtual_filename, dcpl.get(), i, what));
    s.dataset = unescape_percent(mapping_string(H5Pget_virtual_dsetname, dcpl.get(), i, what));
    Handle vspace = checked_read(H5Pget_virtual_vspace(dcpl.get(), i),
                                 what + ": cannot read virtual mapping " + std::to_string(i));
    const int rank = H5Sget_simple_extent_ndims(vspace.get());
    std::vector<hsize_t> lo(static_cast<size_t>(std::max(rank, 1))), hi(lo.size());
    const hssize_t points = H5Sget_select_npoints(vspace.get());
    bool block = rank == static_cast<int>(own.size()) && rank >= 1 && points > 0 &&
                 H5Sget_select_bounds(vspace.get(), lo.data(), hi.data()) >= 0;
    for (int k = 1; block && k < rank; ++k)
      block = lo[k] == 0 && static_cast<std::int64_t>(hi[k]) + 1 == own[k];
    if (block) {
      s.first_row = static_cast<std::int64_t>(lo[0]);
      s.rows = static_cast<std::int64_t>(hi[0] - lo[0] + 1);
      block = s.rows * row_elems == static_cast<std::int64_t>(points);
    }
    NPEFF_CHECK(block, what, ": virtual mapping ", i, " (", s.file, ":", s.dataset,
                ") is not a block of whole rows; npeff writes and reads only that form");
    out.push_back(std::move(s));
  }
  // Rows in order, each exactly once: a file made elsewhere (h5py) may list its mappings in any
  // order, and an unmapped row would read as the fill value.
  std::sort(out.begin(), out.end(), [](const VirtualSource& a, const VirtualSource& b) {
    return a.first_row < b.first_row;
  });
  std::int64_t next = 0;
  for (const VirtualSource& s : out) {
    NPEFF_CHECK(s.first_row == next, what, ": its virtual mappings ",
                s.first_row < next ? "overlap" : "leave a gap", " at row ",
                std::min(next, s.first_row), " (", s.file,
                "); npeff reads only mappings that tile the rows");
    next += s.rows;
  }
  NPEFF_CHECK(out.empty() || next == own[0], what, ": its virtual mappings cover rows [0, ", next,
              ") of ", own[0]);
  return out;
}

Dataset Group::create_virtual_dataset(const std::string& name, DType dtype,
                                      const std::vector<std::int64_t>& shape,
                                      const std::vector<VirtualSource>& sources) {
  const std::string path = join_path(path_, name);
  const std::string what = file_name_ + ": cannot create virtual dataset " + path;
  NPEFF_ASSERT(dtype == DType::kFloat32 || dtype == DType::kFloat16,
               "virtual datasets are float16/float32 (", path, ")");
  NPEFF_CHECK(!has(name), what, ": it already exists");
  NPEFF_ASSERT(!shape.empty(), "a virtual dataset has rows (", path, ")");
  const std::vector<hsize_t> dims = to_hsize(shape, what);
  Handle vspace = make_simple_space(dims);
  Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate failed");
  H5Pset_obj_track_times(dcpl.get(), 0);
  // NaN where a source file is missing: HDF5's default fill (0) would read as a silent zero PEF.
  const float nan = std::nanf("");
  if (H5Pset_fill_value(dcpl.get(), H5T_NATIVE_FLOAT, &nan) < 0)
    NPEFF_FAIL(what, ": cannot set its fill value", detail::hdf5_detail());
  std::int64_t next = 0;
  for (const VirtualSource& s : sources) {
    NPEFF_ASSERT(s.first_row == next && s.rows > 0, "virtual sources of ", path,
                 " must tile its rows in order");
    std::vector<hsize_t> start(dims.size(), 0), count = dims;
    start[0] = static_cast<hsize_t>(s.first_row);
    count[0] = static_cast<hsize_t>(s.rows);
    Handle src_space = make_simple_space(count);
    if (H5Sselect_hyperslab(vspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                            nullptr) < 0 ||
        H5Pset_virtual(dcpl.get(), vspace.get(), escape_percent(s.file).c_str(),
                       escape_percent(s.dataset).c_str(), src_space.get()) < 0) {
      NPEFF_FAIL(what, ": cannot map rows [", s.first_row, ", ", s.first_row + s.rows, ") to ",
                 s.file, ":", s.dataset, detail::hdf5_detail());
    }
    next += s.rows;
  }
  NPEFF_ASSERT(next == shape[0], "virtual sources of ", path, " cover ", next, " rows of ",
               shape_string(shape));
  H5Sselect_all(vspace.get());
  Handle lcpl = checked(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate failed");
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle ftype = file_type(dtype);
  Handle ds = checked(H5Dcreate2(id(), name.c_str(), ftype.get(), vspace.get(), lcpl.get(),
                                 dcpl.get(), H5P_DEFAULT),
                      what + " (file opened read-only or disk full?)");
  return Dataset(std::move(ds), path, file_name_);
}

}  // namespace npeff::io
