// Virtual datasets (io::Group::create_virtual_dataset, docs/formats.md "Part files") and the
// content-hash cache (io::content_hash): how compute-pefs writes each PEF once and fingerprints
// a checkpoint once. References: the source files' own values (read back whole), a planted NaN
// for a missing source, and the uncached hash.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/content_hash.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/pef_writer.h"
#include "npeff/io/schema.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using npeff::io::DType;
using npeff::io::File;

class Hdf5VirtualTest : public npeff::testing::TempDirTest {
 protected:
  // A part file holding /pefs [rows, 2, 3] = base + its flat index, and /example_ids.
  void write_part(const std::string& path, int64_t rows, float base, DType dtype,
                  const nlohmann::json& provenance = nlohmann::json::object()) {
    fs::create_directories(fs::path(path).parent_path());
    File f = File::create(path);
    npeff::io::write_header(f, {npeff::io::kPefSchema, npeff::io::kPefSchemaVersion}, provenance);
    std::vector<float> v(static_cast<size_t>(rows * 6));
    for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<float>(i);
    f.root().create_dataset("pefs", dtype, {rows, 2, 3}).write(v.data());
    std::vector<int64_t> ids(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) ids[static_cast<size_t>(i)] = static_cast<int64_t>(base) + i;
    f.root().create_dataset("example_ids", DType::kInt64, {rows}).write(ids.data());
    std::vector<double> norms(static_cast<size_t>(rows), 1.0);
    f.root().create_dataset("raw_norms", DType::kFloat64, {rows}).write(norms.data());
    f.commit();
  }
  // A PEF file at `out` whose /pefs is virtual over `parts` (given relative to out's folder).
  void write_virtual(const std::string& out, const std::vector<std::string>& parts,
                     const std::vector<int64_t>& rows, DType dtype) {
    File f = File::create(out);
    npeff::io::write_header(f, {npeff::io::kPefSchema, npeff::io::kPefSchemaVersion},
                            nlohmann::json::object());
    std::vector<npeff::io::VirtualSource> sources;
    int64_t total = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      sources.push_back({parts[i], "pefs", total, rows[i]});
      total += rows[i];
    }
    f.root().create_virtual_dataset("pefs", dtype, {total, 2, 3}, sources);
    std::vector<int64_t> ids(static_cast<size_t>(total), 0);
    f.root().create_dataset("example_ids", DType::kInt64, {total}).write(ids.data());
    std::vector<double> norms(static_cast<size_t>(total), 1.0);
    f.root().create_dataset("raw_norms", DType::kFloat64, {total}).write(norms.data());
    f.commit();
  }
  static std::vector<float> read_all(const std::string& path) {
    const File f = File::open(path);
    const auto ds = f.root().dataset("pefs");
    const auto shape = ds.shape();
    std::vector<float> v(static_cast<size_t>(shape[0] * shape[1] * shape[2]));
    ds.read(v.data());
    return v;
  }
};

TEST_F(Hdf5VirtualTest, RowsAreTheSourcesInOrderWhereverTheFolderMoves) {
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    SCOPED_TRACE(npeff::io::to_string(dtype));
    fs::remove_all(path("a"));
    fs::remove_all(path("b"));
    // '%' in a name: HDF5 reads source names as patterns ("%b"), npeff escapes it.
    write_part(path("a/o%b.parts/p0.h5"), 3, 0.f, dtype);
    write_part(path("a/o%b.parts/p1.h5"), 2, 100.f, dtype);
    write_virtual(path("a/out.h5"), {"o%b.parts/p0.h5", "o%b.parts/p1.h5"}, {3, 2}, dtype);
    std::vector<float> expected = read_all(path("a/o%b.parts/p0.h5"));
    const std::vector<float> second = read_all(path("a/o%b.parts/p1.h5"));
    expected.insert(expected.end(), second.begin(), second.end());
    EXPECT_EQ(read_all(path("a/out.h5")), expected);
    // Hyperslabs across the boundary go through the same path as decompose's blocks.
    const File f = File::open(path("a/out.h5"));
    const auto ds = f.root().dataset("pefs");
    EXPECT_TRUE(ds.is_virtual());
    EXPECT_FALSE(f.root().dataset("example_ids").is_virtual());
    std::vector<float> slab(2 * 6);
    ds.read_slab({2, 0, 0}, {2, 2, 3}, slab.data());
    EXPECT_EQ(slab, std::vector<float>(expected.begin() + 12, expected.begin() + 24));
    const auto sources = ds.virtual_sources();
    ASSERT_EQ(sources.size(), 2u);
    EXPECT_EQ(sources[1].file, "o%b.parts/p1.h5");
    EXPECT_EQ(sources[1].first_row, 3);
    EXPECT_EQ(sources[1].rows, 2);
    // The file and its part folder moved together.
    fs::rename(path("a"), path("b"));
    EXPECT_EQ(read_all(path("b/out.h5")), expected);
    EXPECT_EQ(npeff::io::read_pef_info(path("b/out.h5")).examples, 5);
  }
}

TEST_F(Hdf5VirtualTest, MissingSourceReadsAsNaNAndIsRefusedByName) {
  for (DType dtype : {DType::kFloat16, DType::kFloat32}) {  // float32 last: used below
    SCOPED_TRACE(npeff::io::to_string(dtype));
    fs::remove_all(path("out.h5.parts"));
    fs::remove(path("out.h5"));
    write_part(path("out.h5.parts/p0.h5"), 3, 0.f, dtype);
    write_part(path("out.h5.parts/p1.h5"), 2, 100.f, dtype);
    write_virtual(path("out.h5"), {"out.h5.parts/p0.h5", "out.h5.parts/p1.h5"}, {3, 2}, dtype);
    fs::remove(path("out.h5.parts/p1.h5"));
    // HDF5 (and so h5py) fills the missing rows: NaN, which no stage takes for data.
    const std::vector<float> v = read_all(path("out.h5"));
    EXPECT_EQ(v[0], 0.f);
    for (size_t i = 18; i < v.size(); ++i) EXPECT_TRUE(std::isnan(v[i])) << i;
  }
  try {
    npeff::io::read_pef_info(path("out.h5"));
    FAIL() << "a missing part file was not reported";
  } catch (const npeff::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rows [3, 5) from out.h5.parts/p1.h5, which is missing"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("merge-pefs --copy"), std::string::npos) << msg;
  }
  // A source of other rows than mapped is refused too.
  write_part(path("out.h5.parts/p1.h5"), 4, 100.f, DType::kFloat32);
  EXPECT_THROW(npeff::io::read_pef_info(path("out.h5")), npeff::Error);
}

TEST_F(Hdf5VirtualTest, MergeFlattensVirtualInputsOrCopies) {
  write_part(path("s0.h5.parts/p0.h5"), 3, 0.f, DType::kFloat32);
  write_part(path("s0.h5.parts/p1.h5"), 2, 100.f, DType::kFloat32);
  write_virtual(path("s0.h5"), {"s0.h5.parts/p0.h5", "s0.h5.parts/p1.h5"}, {3, 2}, DType::kFloat32);
  write_part(path("s1.h5"), 4, 200.f, DType::kFloat32);  // a regular (self-contained) input
  fs::create_directories(path("out"));
  EXPECT_EQ(npeff::io::merge_pef_files({path("s0.h5"), path("s1.h5")}, path("out/m.h5"),
                                       nlohmann::json::object()),
            9);
  EXPECT_EQ(npeff::io::merge_pef_files({path("s0.h5"), path("s1.h5")}, path("out/c.h5"),
                                       nlohmann::json::object(),
                                       /*copy=*/true),
            9);
  std::vector<float> expected = read_all(path("s0.h5"));
  const std::vector<float> second = read_all(path("s1.h5"));
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(read_all(path("out/m.h5")), expected);
  EXPECT_EQ(read_all(path("out/c.h5")), expected);
  const File m = File::open(path("out/m.h5"));
  const auto sources = m.root().dataset("pefs").virtual_sources();
  ASSERT_EQ(sources.size(), 3u);  // the parts themselves, not s0.h5: no virtual of a virtual
  EXPECT_EQ(sources[0].file, "../s0.h5.parts/p0.h5");
  EXPECT_EQ(sources[2].file, "../s1.h5");
  EXPECT_EQ(sources[2].first_row, 5);
  EXPECT_FALSE(File::open(path("out/c.h5")).root().dataset("pefs").is_virtual());
  // A self-contained input replaced by other PEFs of its shape is refused (its provenance).
  fs::rename(path("s1.h5"), path("s1-kept.h5"));
  write_part(path("s1.h5"), 4, 900.f, DType::kFloat32, {{"command", "another run"}});
  EXPECT_THROW(npeff::io::read_pef_info(path("out/m.h5")), npeff::Error);
  fs::rename(path("s1-kept.h5"), path("s1.h5"));
  EXPECT_EQ(npeff::io::read_pef_info(path("out/m.h5")).examples, 9);
  // The merged file does not need the intermediate s0.h5; the copy needs nothing.
  fs::remove(path("s0.h5"));
  EXPECT_EQ(read_all(path("out/m.h5")), expected);
  fs::remove_all(path("s0.h5.parts"));
  EXPECT_THROW(npeff::io::read_pef_info(path("out/m.h5")), npeff::Error);
  EXPECT_EQ(read_all(path("out/c.h5")), expected);
  // An output folder that is a symlink to a folder elsewhere: the sources are named as HDF5
  // resolves them from the folder the file is opened in (the OS follows the link, then "..").
  fs::create_directories(path("scratch/deep"));
  fs::create_directory_symlink(path("scratch/deep"), path("results"));
  write_part(path("s2.h5"), 2, 300.f, DType::kFloat32);
  EXPECT_EQ(
      npeff::io::merge_pef_files({path("s2.h5")}, path("results/m.h5"), nlohmann::json::object()),
      2);
  EXPECT_EQ(read_all(path("results/m.h5")), read_all(path("s2.h5")));
  EXPECT_EQ(npeff::io::read_pef_info(path("results/m.h5")).examples, 2);
  // Mixed storage dtypes only by copy.
  write_part(path("h.h5"), 2, 0.f, DType::kFloat16);
  EXPECT_THROW(npeff::io::merge_pef_files({path("s1.h5"), path("h.h5")}, path("x.h5"),
                                          nlohmann::json::object()),
               npeff::Error);
  EXPECT_EQ(npeff::io::merge_pef_files({path("s1.h5"), path("h.h5")}, path("x.h5"),
                                       nlohmann::json::object(), true),
            6);
}

// content_hash: cached by file identity, recomputed when a file changes (same size, same mtime
// included), and equal to the uncached value.
TEST_F(Hdf5VirtualTest, ContentHashIsCachedAndFollowsChanges) {
  const std::string model = path("model.bin");
  std::ofstream(model) << std::string(100000, 'a');
  ASSERT_EQ(::setenv("NPEFF_CACHE_DIR", path("cache").c_str(), 1), 0);
  npeff::io::content_hash(model);
  EXPECT_FALSE(fs::exists(path("cache"))) << "a file changed within 2 s was cached";
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  ASSERT_EQ(::setenv("NPEFF_CACHE_DIR", "off", 1), 0);
  const std::string uncached = npeff::io::content_hash(model);
  ASSERT_EQ(::setenv("NPEFF_CACHE_DIR", path("cache").c_str(), 1), 0);
  EXPECT_EQ(npeff::io::content_hash_cache_dir(), path("cache") + "/content-hash");
  EXPECT_EQ(npeff::io::content_hash(model), uncached);
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(path("cache/content-hash"))) entries.push_back(e);
  ASSERT_EQ(entries.size(), 1u);
  // The second call reads the entry: plant another value in it and see it come back.
  std::ifstream in(entries[0]);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find(uncached);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, uncached.size(), "fnv1a64:planted");
  std::ofstream(entries[0]) << text;
  EXPECT_EQ(npeff::io::content_hash(model), "fnv1a64:planted");
  // Same size, mtime set back: ctime still moves (2 s later at least), so it is recomputed.
  const fs::file_time_type mtime = fs::last_write_time(model);
  std::ofstream(model) << std::string(99999, 'a') << "b";
  fs::last_write_time(model, mtime);
  const std::string changed = npeff::io::content_hash(model);
  EXPECT_NE(changed, "fnv1a64:planted");
  EXPECT_NE(changed, uncached);
  ASSERT_EQ(::setenv("NPEFF_CACHE_DIR", "off", 1), 0);
  EXPECT_EQ(npeff::io::content_hash(model), changed);
  // An unwritable cache is skipped.
  std::ofstream(path("blocker")) << "a file where the cache folder would be";
  ASSERT_EQ(::setenv("NPEFF_CACHE_DIR", path("blocker").c_str(), 1), 0);
  EXPECT_EQ(npeff::io::content_hash(model), changed);
  ::unsetenv("NPEFF_CACHE_DIR");
}

}  // namespace
