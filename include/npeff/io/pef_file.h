// PEF files (schema `npeff.pefs`, docs/formats.md): one low-rank, projected PEF G_i [r, d] per
// example. Written by compute-pefs (and synth-pefs); read by decompose, fit-coeffs and the
// later stages, possibly from several files (shards) at once.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "npeff/io/hdf5.h"
#include "npeff/projection/projection_record.h"

namespace npeff::io {

constexpr const char* kPefSchema = "npeff.pefs";
constexpr std::int64_t kPefSchemaVersion = 1;

/// What one PEF file holds (from its metadata only).
struct PefFileInfo {
  std::string path;
  std::int64_t examples = 0;  ///< m
  std::int64_t rank = 0;      ///< r (rows per PEF)
  std::int64_t dim = 0;       ///< d
  io::DType dtype = io::DType::kFloat32;
  bool has_projection = false;
  projection::ProjectionRecord projection;  ///< valid when has_projection
};

/// Opens and validates `path` as an npeff.pefs file. When its /pefs is virtual (compute-pefs and
/// merge-pefs output, docs/formats.md "Part files"), every source file must exist and hold the
/// rows it is mapped to: npeff::Error naming the first one missing and the fix otherwise.
PefFileInfo read_pef_info(const std::string& path);

/// What identifies the PEFs a source file of a virtual /pefs holds: a compute-pefs part's
/// `settings_id` attribute, else "provenance:" + the fingerprint of its provenance (a
/// self-contained file), else "".
std::string pef_source_id(const File& f);

/// The settings id (io::fingerprint_id of the compute-pefs run) of each of the `sources`
/// mappings of a virtual /pefs, from the root attribute `pefs_source_settings` of its file
/// (`root`; not on /pefs, so that files of equal PEFs compare equal there) ("" where unknown: a
/// self-contained input of merge-pefs, or a file written before the attribute existed).
std::vector<std::string> source_settings_ids(const Group& root, std::size_t sources);

/// Where HDF5 finds the source file `source` of a virtual dataset in the file `file`: `source`
/// itself when absolute, else joined to the absolute folder of `file` without resolving ".."
/// lexically (HDF5 >= 1.10 looks there first unless HDF5_VDS_PREFIX is set).
std::string resolve_virtual_file(const std::string& file, const std::string& source);

/// Checks that files can be decomposed together: same r and d, and the same projection (or none
/// in all). Throws npeff::Error naming the mismatch and the files.
void check_compatible(const std::vector<PefFileInfo>& files);

/// read_pef_info of every path, then check_compatible: the files a stage reads together.
std::vector<PefFileInfo> read_compatible_pef_infos(const std::vector<std::string>& paths);

/// PEFs of several files concatenated in the given order.
struct PefSet {
  at::Tensor pefs;         ///< float32 [m, r, d] (float16 files are upcast)
  at::Tensor example_ids;  ///< int64 [m]
  at::Tensor raw_norms;    ///< float64 [m]: ||G^T G||_F before normalisation (as stored)
};

/// PEF files opened for reading, each with the global index of its first example.
struct OpenPefFile {
  File file;
  Dataset pefs;  ///< /pefs, opened once
  std::vector<VirtualSource>
      sources;                ///< a virtual /pefs: its parts (paths resolved), read directly
  std::int64_t start = 0;     ///< global index of the file's first example
  std::int64_t examples = 0;  ///< examples in the file
};
/// Opens `files` (compatible) in order.
std::vector<OpenPefFile> open_pef_files(const std::vector<PefFileInfo>& files);
/// Reads global examples [first, first + count) of `open` (r rows of d each) into `pefs` (float32
/// [count, r, d], host) and, where not null, their ids and stored raw norms. npeff::Error when
/// the range is outside the files.
void read_pef_rows(const std::vector<OpenPefFile>& open, std::int64_t first, std::int64_t count,
                   std::int64_t r, std::int64_t d, float* pefs, std::int64_t* example_ids,
                   double* raw_norms);

/// Loads global examples [first, first + count) (count < 0: to the end) of `files`, which must
/// be compatible. Used whole by single-process runs and by example range by each rank.
PefSet load_pefs(const std::vector<PefFileInfo>& files, std::int64_t first = 0,
                 std::int64_t count = -1);

/// Writes an npeff.pefs file body (datasets and optional /projection); the caller has written the
/// header (io::write_header with {kPefSchema, kPefSchemaVersion}) and commits. /pefs is stored
/// uncompressed, as compute-pefs stores it.
void write_pefs(io::File& file, const at::Tensor& pefs, const at::Tensor& example_ids,
                const at::Tensor& raw_norms, const projection::ProjectionRecord* projection);

}  // namespace npeff::io
