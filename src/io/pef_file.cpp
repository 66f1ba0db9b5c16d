#include "npeff/io/pef_file.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "npeff/core/error.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"

namespace npeff::io {

namespace {
// A virtual /pefs reads missing sources as NaN (the fill value): say which file is missing
// instead, and how to keep or drop the dependency; and refuse parts that another compute-pefs
// run has put in their place (same shape, other PEFs).
void check_virtual_sources(const std::string& path, const io::Group& f_root, const io::Dataset& ds,
                           std::int64_t r, std::int64_t d) {
  const std::vector<VirtualSource> sources = ds.virtual_sources();
  const std::vector<std::string> ids = source_settings_ids(f_root, sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    const VirtualSource& s = sources[i];
    const std::string file = resolve_virtual_file(path, s.file);
    std::error_code ec;
    NPEFF_CHECK(std::filesystem::is_regular_file(file, ec), path, ": its /pefs reads rows [",
                s.first_row, ", ", s.first_row + s.rows, ") from ", s.file, ", which is missing (",
                file, "; ", sources.size(),
                " part files in all): keep the part folder beside the file when moving it, or "
                "write a self-contained copy with: npeff merge-pefs --copy -p FILE -o COPY");
    const io::File f = io::File::open(file);
    NPEFF_CHECK(f.root().has(s.dataset), file, " has no /", s.dataset, ", which ", path,
                ":/pefs reads rows from");
    f.root().dataset(s.dataset).expect(ds.dtype(), {s.rows, r, d});
    const std::string found = pef_source_id(f);
    NPEFF_CHECK(ids[i].empty() || found == ids[i], path, ": its /pefs reads rows [", s.first_row,
                ", ", s.first_row + s.rows, ") from ", s.file,
                ", which now holds other PEFs (another compute-pefs or merge-pefs run: settings ",
                found.empty() ? "unknown" : found, ", expected ", ids[i],
                "): a later run to the same output replaced it; rerun the compute-pefs or "
                "merge-pefs that made ",
                path);
  }
}
}  // namespace

std::string pef_source_id(const File& f) {
  if (f.root().has_attr("settings_id")) return f.root().attr_string("settings_id");
  if (!f.root().has_attr("provenance")) return "";
  // A self-contained file: what made it (command, inputs, settings) stands for its content.
  const nlohmann::json p =
      nlohmann::json::parse(f.root().attr_string("provenance"), nullptr, false);
  return p.is_discarded() ? "" : "provenance:" + fingerprint_id(p);
}

std::vector<std::string> source_settings_ids(const Group& root, std::size_t sources) {
  std::vector<std::string> ids(sources);
  if (!root.has_attr("pefs_source_settings")) return ids;
  const nlohmann::json j =
      nlohmann::json::parse(root.attr_string("pefs_source_settings"), nullptr, false);
  NPEFF_CHECK(j.is_array() && j.size() == sources, root.file_name(),
              ": root attribute pefs_source_settings is not a list of ", sources, " settings ids");
  for (std::size_t i = 0; i < sources; ++i)
    ids[i] = j[i].is_string() ? j[i].get<std::string>() : "";
  return ids;
}

std::string resolve_virtual_file(const std::string& file, const std::string& source) {
  const std::filesystem::path s(source);
  if (s.is_absolute()) return source;
  // HDF5 searches HDF5_VDS_PREFIX first (one folder; its ${ORIGIN} is not expanded here).
  const char* prefix = std::getenv("HDF5_VDS_PREFIX");
  std::error_code ec;
  if (prefix != nullptr && *prefix != '\0' &&
      std::filesystem::exists(std::filesystem::path(prefix) / s, ec))
    return (std::filesystem::path(prefix) / s).string();
  // Joined as HDF5 joins it (no lexical "..": the OS resolves it, following symlinks, for both).
  return (std::filesystem::absolute(file).parent_path() / s).string();
}

PefFileInfo read_pef_info(const std::string& path) {
  const io::File f = io::File::open(path);
  io::expect_schema(f, kPefSchema, kPefSchemaVersion);
  PefFileInfo info;
  info.path = path;
  NPEFF_CHECK(f.root().has("pefs"), path, ": no /pefs dataset");
  const io::Dataset ds = f.root().dataset("pefs");
  const auto shape = ds.shape();
  NPEFF_CHECK(shape.size() == 3, path, ":/pefs has ", shape.size(),
              " dimensions, expected 3 ([examples, rank, dim])");
  info.examples = shape[0];
  info.rank = shape[1];
  info.dim = shape[2];
  info.dtype = ds.dtype();
  NPEFF_CHECK(info.dtype == io::DType::kFloat32 || info.dtype == io::DType::kFloat16, path,
              ":/pefs has dtype ", io::to_string(info.dtype), ", expected float32 or float16");
  if (ds.is_virtual()) check_virtual_sources(path, f.root(), ds, info.rank, info.dim);
  f.root().dataset("example_ids").expect(io::DType::kInt64, {info.examples});
  f.root().dataset("raw_norms").expect(io::DType::kFloat64, {info.examples});
  info.has_projection = projection::read_projection_group(f, info.projection);
  if (info.has_projection) {
    NPEFF_CHECK(info.projection.dim == info.dim, path,
                ": /projection says d = ", info.projection.dim, " but /pefs has d = ", info.dim);
  }
  return info;
}

std::vector<PefFileInfo> read_compatible_pef_infos(const std::vector<std::string>& paths) {
  std::vector<PefFileInfo> files;
  for (const std::string& path : paths) files.push_back(read_pef_info(path));
  check_compatible(files);
  return files;
}

void check_compatible(const std::vector<PefFileInfo>& files) {
  NPEFF_CHECK(!files.empty(), "no PEF files given");
  const PefFileInfo& a = files.front();
  for (const PefFileInfo& b : files) {
    NPEFF_CHECK(b.dim == a.dim, b.path, " has PEF dimension d = ", b.dim, " but ", a.path,
                " has d = ", a.dim, ": they were projected differently and cannot be combined");
    NPEFF_CHECK(b.rank == a.rank, b.path, " has PEF rank ", b.rank, " but ", a.path, " has ",
                a.rank);
    NPEFF_CHECK(b.has_projection == a.has_projection, b.path,
                b.has_projection ? " records a projection" : " records no projection", " but ",
                a.path, a.has_projection ? " does" : " does not");
    if (a.has_projection) {
      NPEFF_CHECK(b.projection.same_as(a.projection), b.path, " was projected with (",
                  b.projection.describe(), ") but ", a.path, " with (", a.projection.describe(),
                  "): projections differ, the PEFs are not comparable");
    }
  }
}

PefSet load_pefs(const std::vector<PefFileInfo>& files, std::int64_t first, std::int64_t count) {
  check_compatible(files);
  std::int64_t total = 0;
  for (const auto& f : files) total += f.examples;
  if (count < 0) count = total - first;
  NPEFF_CHECK(first >= 0 && count >= 0 && first + count <= total, "example range [", first, ", ",
              first + count, ") is outside the ", total, " examples of the PEF files");
  const std::int64_t r = files.front().rank, d = files.front().dim;
  PefSet set{at::empty({count, r, d}, at::kFloat), at::empty({count}, at::kLong),
             at::empty({count}, at::kDouble)};
  read_pef_rows(open_pef_files(files), first, count, r, d, set.pefs.data_ptr<float>(),
                set.example_ids.data_ptr<std::int64_t>(), set.raw_norms.data_ptr<double>());
  return set;
}

std::vector<OpenPefFile> open_pef_files(const std::vector<PefFileInfo>& files) {
  std::vector<OpenPefFile> open;
  std::int64_t start = 0;
  for (const PefFileInfo& info : files) {
    File f = File::open(info.path);
    Dataset pefs = f.root().dataset("pefs");
    std::vector<VirtualSource> sources = pefs.virtual_sources();  // sorted, tiling the rows
    for (VirtualSource& s : sources) s.file = resolve_virtual_file(info.path, s.file);
    open.push_back({std::move(f), std::move(pefs), std::move(sources), start, info.examples});
    start += info.examples;
  }
  return open;
}

void read_pef_rows(const std::vector<OpenPefFile>& open, std::int64_t first, std::int64_t count,
                   std::int64_t r, std::int64_t d, float* pefs, std::int64_t* example_ids,
                   double* raw_norms) {
  const std::int64_t total = open.empty() ? 0 : open.back().start + open.back().examples;
  NPEFF_CHECK(first >= 0 && count >= 0 && first + count <= total, "example range [", first, ", ",
              first + count, ") is outside the ", total, " examples of the PEF files");
  std::int64_t filled = 0;
  for (const OpenPefFile& f : open) {
    const std::int64_t lo = std::max(first, f.start);
    const std::int64_t hi = std::min(first + count, f.start + f.examples);
    if (lo >= hi) continue;
    const std::int64_t k = hi - lo, local = lo - f.start;
    if (f.sources.empty()) {
      f.pefs.read_slab({local, 0, 0}, {k, r, d}, pefs + filled * r * d);
    } else {
      // Part by part, each opened for the read only: through the virtual dataset HDF5 would keep
      // every part it has read open (thousands at the paper's m, past the usual open-file
      // limit, where a part it cannot open reads as NaN).
      for (const VirtualSource& s : f.sources) {
        const std::int64_t a = std::max(local, s.first_row);
        const std::int64_t b = std::min(local + k, s.first_row + s.rows);
        if (a >= b) continue;
        const File part = File::open(s.file);
        part.root().dataset(s.dataset).read_slab({a - s.first_row, 0, 0}, {b - a, r, d},
                                                 pefs + (filled + a - local) * r * d);
      }
    }
    if (example_ids != nullptr)
      f.file.root().dataset("example_ids").read_slab({local}, {k}, example_ids + filled);
    if (raw_norms != nullptr)
      f.file.root().dataset("raw_norms").read_slab({local}, {k}, raw_norms + filled);
    filled += k;
  }
  NPEFF_ASSERT(filled == count, "read ", filled, " of ", count, " examples");
}

void write_pefs(io::File& file, const at::Tensor& pefs, const at::Tensor& example_ids,
                const at::Tensor& raw_norms, const projection::ProjectionRecord* projection) {
  NPEFF_ASSERT(pefs.dim() == 3 && pefs.scalar_type() == at::kFloat, "pefs must be float32 [m,r,d]");
  const at::Tensor g = pefs.contiguous().cpu();
  const at::Tensor ids = example_ids.to(at::kLong).contiguous().cpu();
  const at::Tensor norms = raw_norms.to(at::kDouble).contiguous().cpu();
  io::DatasetOptions uncompressed;  // as compute-pefs' parts: float rows barely compress (1.17:1)
  uncompressed.compression = 0;     // and inflating costs every out-of-core pass a full core
  file.root()
      .create_dataset("pefs", io::DType::kFloat32, {g.size(0), g.size(1), g.size(2)}, uncompressed)
      .write(g.data_ptr<float>());
  file.root()
      .create_dataset("example_ids", io::DType::kInt64, {ids.size(0)})
      .write(ids.data_ptr<std::int64_t>());
  file.root()
      .create_dataset("raw_norms", io::DType::kFloat64, {norms.size(0)})
      .write(norms.data_ptr<double>());
  if (projection != nullptr) projection::write_projection_group(file, *projection);
}

}  // namespace npeff::io
