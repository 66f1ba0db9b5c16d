// Dataset and Group methods (see include/npeff/io/hdf5.h); the rest of the HDF5 layer is in
// hdf5.cpp and hdf5_attributes.cpp.
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
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
using detail::describe_type;
using detail::file_type;
using detail::hdf5_detail;
using detail::is_numeric_class;
using detail::join_path;
using detail::make_simple_space;
using detail::make_vlen_string_type;
using detail::read_string_values;
using detail::shape_string;
using detail::space_info;
using detail::SpaceInfo;
using detail::to_hsize;
using detail::unreadable_detail;
using detail::where;

constexpr std::size_t kChunkTargetBytes = std::size_t{1} << 20;
// Per-dataset chunk cache: several ~1 MiB chunks, so that appending a few rows at a time to a
// compressed chunk does not re-read and re-compress it on every call.
constexpr std::size_t kChunkCacheBytes = std::size_t{16} << 20;
constexpr std::size_t kChunkCacheSlots = 12421;

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
  const std::string detail = unreadable_detail(": file truncated or corrupt");
  const std::string filter = missing_filter(d);
  NPEFF_CHECK(filter.empty(), ds_what(d), " could not be read: it is compressed with the HDF5 ",
              "filter ", filter, ", which this HDF5 library does not provide");
  NPEFF_FAIL(ds_what(d), " could not be read", detail);
}

[[noreturn]] void fail_write(const Dataset& d) {
  NPEFF_FAIL(ds_what(d), ": cannot write (file opened read-only or disk full?)", hdf5_detail());
}

void expect_numeric(const Dataset& d) {
  Handle type = checked_read(H5Dget_type(d.id()), ds_what(d) + ": cannot read its type", "");
  NPEFF_CHECK(is_numeric_class(H5Tget_class(type.get())), ds_what(d), " has dtype ",
              describe_type(type.get()), ", expected numbers");
}

SpaceInfo dataset_space(const Dataset& d) {
  Handle space = checked_read(H5Dget_space(d.id()), ds_what(d) + ": cannot read its shape", "");
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
  Handle space = checked_read(H5Dget_space(d.id()), ds_what(d) + ": cannot read its shape", "");
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
  return checked_read(H5Oopen(g.id(), name.c_str(), H5P_DEFAULT),
                      g.file_name() + ": " + kind + " " + path + " cannot be opened");
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

}  // namespace

// ---- Dataset -------------------------------------------------------------------------------

DType Dataset::dtype() const {
  Handle type = checked_read(H5Dget_type(id()), ds_what(*this) + ": cannot read its type", "");
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
  Handle dcpl =
      checked_read(H5Dget_create_plist(id()), ds_what(*this) + ": cannot read its layout", "");
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

void Dataset::read_slab(const std::vector<std::int64_t>& offset,
                        const std::vector<std::int64_t>& count, std::int64_t* data) const {
  read_slab_impl(*this, offset, count, H5T_NATIVE_INT64, data);
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

void Dataset::append_rows(std::int64_t rows, const double* data) {
  append_rows_impl(*this, rows, H5T_NATIVE_DOUBLE, data);
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
  if (rc < 0) NPEFF_FAIL(where(*this), ": cannot list members", unreadable_detail());
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
  Handle ds = checked_read(H5Dopen2(id(), name.c_str(), dapl.get()),
                           file_name_ + ": dataset " + path + " cannot be opened");
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

}  // namespace npeff::io
