// HDF5 files this npeff's HDF5 library cannot read because a newer HDF5 wrote them in a newer
// file format are reported as such (with the library version and the fix), not as corrupt; truly
// corrupt files still say "corrupt". tests/fixtures/hdf5/newer_format.h5 was written by h5py
// 3.16 / HDF5 2.0 with libver='latest' (tools/fixtures/make_hdf5_newer_fixture.py).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "npeff/io/hdf5.h"
#include "npeff/io/inspect.h"
#include "unit/test_util.h"

namespace npeff::io {
namespace {

using namespace npeff::testing;

std::string fixture() {
  return source_dir() + "/tests/fixtures/hdf5/newer_format.h5";
}

std::string library_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

// The message for a file in a newer format: what it is, the library and the fix.
std::vector<std::string> newer_format_parts(const std::string& what) {
  return {what, "the file is HDF5 in a newer file format than this npeff reads",
          "this npeff is built with HDF5 " + library_version(), "libver='earliest'",
          "build npeff against a newer HDF5"};
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class Hdf5Versions : public TempDirTest {
 protected:
  // A small committed npeff-written file.
  std::string write_file(const std::string& name) {
    const std::string p = path(name);
    File f = File::create(p);
    const std::vector<float> values = {1, 2, 3, 4, 5, 6};
    f.root().create_dataset("x", DType::kFloat32, {2, 3}).write(values.data());
    f.commit();
    return p;
  }
  static void patch(const std::string& p, std::streamoff at, const std::string& bytes) {
    std::fstream io(p, std::ios::binary | std::ios::in | std::ios::out);
    io.seekp(at);
    io.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(io.good()) << p;
  }
};

TEST_F(Hdf5Versions, DatasetInANewerFormatSaysSo) {
  ASSERT_TRUE(std::filesystem::exists(fixture())) << fixture();
  const File f = File::open(fixture());
  std::vector<float> small(3);
  f.root().dataset("contiguous").read(small.data());
  EXPECT_EQ(small, (std::vector<float>{1, 2, 3}));
  if (H5_VERSION_GE(2, 0, 0)) {  // a library that writes layout message version 5 reads it
    std::vector<float> values(32);
    f.root().dataset("vectors").read(values.data());
    EXPECT_EQ(values[31], 31.f);
    return;
  }
  expect_error([&] { f.root().dataset("vectors"); },
               newer_format_parts("dataset /vectors cannot be opened"));
  expect_error([&] { f.root().dataset("vectors"); }, {"bad version number for layout message"});
  const std::string msg = message_of([&] { f.root().dataset("vectors"); });
  EXPECT_FALSE(contains(msg, "(corrupt file?)")) << msg;
  // npeff inspect walks every object: the same message.
  expect_error([&] { inspect_file(fixture()); },
               newer_format_parts("newer_format.h5: object /vectors cannot be opened"));
}

TEST_F(Hdf5Versions, SuperblockInANewerFormatSaysSo) {
  const std::string p = write_file("sb.h5");
  patch(p, 8, std::string(1, '\x04'));  // the superblock version, after the 8-byte signature
  expect_error([&] { File::open(p); }, newer_format_parts("sb.h5: cannot open"));
  expect_error([&] { File::open(p); },
               {"superblock version 4, HDF5 " + library_version() + " reads versions 0 to 3"});
}

TEST_F(Hdf5Versions, CorruptFilesStillSayCorrupt) {
  // The superblock intact, everything after it overwritten: corrupt, not newer.
  const std::string p = write_file("garbage.h5");
  const auto size = std::filesystem::file_size(p);
  patch(p, 48, std::string(static_cast<std::size_t>(size) - 48, '\x5a'));
  std::string msg;
  try {
    const File f = File::open(p);
    f.root().dataset("x");
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_TRUE(contains(msg, "corrupt")) << msg;
  EXPECT_FALSE(contains(msg, "newer file format")) << msg;
  // A superblock version byte no HDF5 will write soon: garbage, not a newer format.
  const std::string z = write_file("sb90.h5");
  patch(z, 8, std::string(1, '\x5a'));
  const std::string sb = message_of([&] { File::open(z); });
  EXPECT_TRUE(contains(sb, "corrupt HDF5 file?): superblock version 90")) << sb;
  EXPECT_FALSE(contains(sb, "newer file format")) << sb;
  // Truncated after the superblock.
  const std::string t = write_file("cut.h5");
  std::filesystem::resize_file(t, 200);
  const std::string cut = message_of([&] { File::open(t).root().dataset("x"); });
  EXPECT_TRUE(contains(cut, "truncated")) << cut;
  EXPECT_FALSE(contains(cut, "newer file format")) << cut;
}

}  // namespace
}  // namespace npeff::io
