// Tests of the HDF5 layer: dtype and attribute round trips, chunking, resumable appends, atomic
// commit, and clean npeff::Error (never a crash) on missing, foreign, truncated or corrupt files.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/hdf5.h"
#include "unit/test_util.h"

namespace npeff::io {
namespace {

namespace fs = std::filesystem;

class Hdf5Test : public npeff::testing::TempDirTest {};

using npeff::testing::contains;
using npeff::testing::expect_error;

void truncate_to(const std::string& path, std::uintmax_t bytes) {
  fs::resize_file(path, bytes);
  ASSERT_EQ(fs::file_size(path), bytes);
}

// A committed file with a compressed float32 dataset large enough to span several chunks.
void write_matrix_file(const std::string& path, std::int64_t rows, std::int64_t cols) {
  File f = File::create(path);
  std::vector<float> data(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 1000) * 0.5f;
  Dataset ds = f.root().create_dataset("x", DType::kFloat32, {rows, cols});
  ds.write(data.data());
  f.root().set_attr("note", "hello");
  f.commit();
}

TEST(Hdf5DType, NamesAndSizes) {
  EXPECT_EQ(to_string(DType::kFloat16), "float16");
  EXPECT_EQ(to_string(DType::kFloat32), "float32");
  EXPECT_EQ(to_string(DType::kFloat64), "float64");
  EXPECT_EQ(to_string(DType::kInt32), "int32");
  EXPECT_EQ(to_string(DType::kInt64), "int64");
  EXPECT_EQ(to_string(DType::kUInt8), "uint8");
  EXPECT_EQ(to_string(DType::kString), "string");
  EXPECT_EQ(dtype_size(DType::kFloat16), 2u);
  EXPECT_EQ(dtype_size(DType::kFloat32), 4u);
  EXPECT_EQ(dtype_size(DType::kFloat64), 8u);
  EXPECT_EQ(dtype_size(DType::kInt32), 4u);
  EXPECT_EQ(dtype_size(DType::kInt64), 8u);
  EXPECT_EQ(dtype_size(DType::kUInt8), 1u);
  EXPECT_EQ(dtype_size(DType::kString), 0u);
}

TEST(Hdf5Handle, MoveTransfersOwnership) {
  Handle a(H5Screate(H5S_SCALAR));
  ASSERT_TRUE(a.valid());
  const std::int64_t id = a.get();
  Handle b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.get(), id);
  Handle c;
  c = std::move(b);
  EXPECT_EQ(c.get(), id);
  EXPECT_GT(H5Iis_valid(id), 0);
  c = Handle();
  EXPECT_LE(H5Iis_valid(id), 0);  // closed by the assignment
}

TEST_F(Hdf5Test, RoundTripEveryDType) {
  const std::string p = path("types.h5");
  const std::vector<float> f32 = {1.5f, -2.25f, 3.0e10f, 0.0f, -0.0f, 1e-30f};
  const std::vector<double> f64 = {3.141592653589793, -1e300, 5e-324, 0.1, 2.0, -3.5};
  // Values exactly representable in IEEE half precision, including a subnormal (2^-15) and the
  // largest finite value.
  const std::vector<float> f16 = {0.5f,    -2.0f, 1024.0f, 6.103515625e-05f, 3.0517578125e-05f,
                                  65504.0f};
  const std::vector<std::int32_t> i32 = {
      0, -1, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max(),
      7, 8};
  const std::vector<std::int64_t> i64 = {
      0,  -1, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
      42, -42};
  const std::vector<std::int32_t> u8 = {0, 1, 127, 128, 200, 255};
  const std::vector<std::string> strings = {"alpha", "", "h\xc3\xa9llo \xe2\x9c\x93",
                                            std::string(10000, 'z')};
  {
    File f = File::create(p);
    Group& root = f.root();
    root.create_dataset("f32", DType::kFloat32, {2, 3}).write(f32.data());
    root.create_dataset("f64", DType::kFloat64, {6}).write(f64.data());
    root.create_dataset("f16", DType::kFloat16, {3, 2}).write(f16.data());
    root.create_dataset("i32", DType::kInt32, {6}).write(i32.data());
    root.create_dataset("i64", DType::kInt64, {6}).write(i64.data());
    root.create_dataset("u8", DType::kUInt8, {6}).write(u8.data());
    root.create_strings("names", strings);
    root.create_strings("no_names", {});
    f.commit();
  }
  File f = File::open(p);
  const Group& root = f.root();
  EXPECT_EQ(root.children(), (std::vector<std::string>{"f16", "f32", "f64", "i32", "i64", "names",
                                                       "no_names", "u8"}));

  Dataset ds = root.dataset("f32");
  EXPECT_EQ(ds.dtype(), DType::kFloat32);
  EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(ds.path(), "/f32");
  EXPECT_EQ(ds.file_name(), p);
  std::vector<float> f32_back(6);
  ds.read(f32_back.data());
  EXPECT_EQ(f32_back, f32);

  ds = root.dataset("f64");
  EXPECT_EQ(ds.dtype(), DType::kFloat64);
  std::vector<double> f64_back(6);
  ds.read(f64_back.data());
  EXPECT_EQ(f64_back, f64);
  std::vector<float> f64_as_f32(6);
  ds.read(f64_as_f32.data());  // converted by HDF5
  EXPECT_FLOAT_EQ(f64_as_f32[0], 3.14159265f);
  EXPECT_FLOAT_EQ(f64_as_f32[4], 2.0f);

  ds = root.dataset("f16");
  EXPECT_EQ(ds.dtype(), DType::kFloat16);
  EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{3, 2}));
  std::vector<float> f16_back(6);
  ds.read(f16_back.data());
  EXPECT_EQ(f16_back, f16);
  {
    Handle type(H5Dget_type(ds.id()));
    EXPECT_EQ(H5Tget_class(type.get()), H5T_FLOAT);
    EXPECT_EQ(H5Tget_size(type.get()), 2u);  // really stored as 2-byte floats
  }

  ds = root.dataset("i32");
  EXPECT_EQ(ds.dtype(), DType::kInt32);
  std::vector<std::int32_t> i32_back(6);
  ds.read(i32_back.data());
  EXPECT_EQ(i32_back, i32);

  ds = root.dataset("i64");
  EXPECT_EQ(ds.dtype(), DType::kInt64);
  std::vector<std::int64_t> i64_back(6);
  ds.read(i64_back.data());
  EXPECT_EQ(i64_back, i64);

  ds = root.dataset("u8");
  EXPECT_EQ(ds.dtype(), DType::kUInt8);
  std::vector<std::int32_t> u8_back(6);
  ds.read(u8_back.data());
  EXPECT_EQ(u8_back, u8);

  ds = root.dataset("names");
  EXPECT_EQ(ds.dtype(), DType::kString);
  EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{4}));
  EXPECT_EQ(ds.read_strings(), strings);
  EXPECT_TRUE(root.dataset("no_names").read_strings().empty());
  expect_error([&] { root.dataset("names").read(f32_back.data()); },
               {"/names", "string", "expected numbers"});
}

TEST_F(Hdf5Test, RoundTripEveryAttributeType) {
  const std::string p = path("attrs.h5");
  const std::string big(100000, 'x');  // larger than a compact object header allows
  {
    File f = File::create(p);
    Group& root = f.root();
    root.set_attr("s", "text");
    root.set_attr("s_empty", "");
    root.set_attr("s_utf8", std::string("\xce\xbb=0.5"));
    root.set_attr("s_big", big);
    root.set_attr("i", std::int64_t{-5});
    root.set_attr("i_min", std::numeric_limits<std::int64_t>::min());
    root.set_attr("i_from_int", 7);
    root.set_attr("u", std::numeric_limits<std::uint64_t>::max());
    root.set_attr("u_small", std::uint64_t{12});
    root.set_attr("d", 0.1);
    root.set_attr("iv", std::vector<std::int64_t>{1, -2, 3});
    root.set_attr("iv_empty", std::vector<std::int64_t>{});
    root.set_attr("dv", std::vector<double>{0.5, -1.25});
    root.set_attr("overwritten", "first");
    root.set_attr("overwritten", 3.5);  // replaces, even with another type
    Group g = root.create_group("g");
    g.set_attr("seed", std::uint64_t{42});
    Dataset ds = root.create_dataset("x", DType::kFloat32, {2});
    ds.set_attr("unit", "m");
    f.commit();
  }
  File f = File::open(p);
  const Group& root = f.root();
  EXPECT_TRUE(root.has_attr("s"));
  EXPECT_FALSE(root.has_attr("nope"));
  EXPECT_EQ(root.attr_names().size(), 14u);
  EXPECT_EQ(root.attr_string("s"), "text");
  EXPECT_EQ(root.attr_string("s_empty"), "");
  EXPECT_EQ(root.attr_string("s_utf8"), "\xce\xbb=0.5");
  EXPECT_EQ(root.attr_string("s_big"), big);
  EXPECT_EQ(root.attr_int("i"), -5);
  EXPECT_EQ(root.attr_int("i_min"), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(root.attr_int("i_from_int"), 7);
  EXPECT_EQ(root.attr_uint("u"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(root.attr_uint("u_small"), 12u);
  EXPECT_EQ(root.attr_int("u_small"), 12);
  EXPECT_EQ(root.attr_uint("i_from_int"), 7u);
  EXPECT_EQ(root.attr_double("d"), 0.1);
  EXPECT_EQ(root.attr_double("i"), -5.0);  // integers read as doubles
  EXPECT_EQ(root.attr_int_vector("iv"), (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(root.attr_int_vector("i"), (std::vector<std::int64_t>{-5}));
  EXPECT_TRUE(root.attr_int_vector("iv_empty").empty());
  EXPECT_EQ(root.attr_double_vector("dv"), (std::vector<double>{0.5, -1.25}));
  EXPECT_EQ(root.attr_double("overwritten"), 3.5);
  EXPECT_EQ(root.group("g").attr_uint("seed"), 42u);
  EXPECT_EQ(root.dataset("x").attr_string("unit"), "m");

  EXPECT_EQ(root.attr_display("s"), "\"text\"");
  EXPECT_EQ(root.attr_display("i"), "-5");
  EXPECT_EQ(root.attr_display("u"), "18446744073709551615");
  EXPECT_EQ(root.attr_display("d"), "0.1");
  EXPECT_EQ(root.attr_display("iv"), "[1, -2, 3]");
  EXPECT_EQ(root.attr_display("iv_empty"), "[]");
  EXPECT_EQ(root.attr_display("dv"), "[0.5, -1.25]");
  EXPECT_TRUE(contains(root.attr_display("s_big"), "(100000 bytes)")) << root.attr_display("s_big");
  EXPECT_LT(root.attr_display("s_big").size(), 300u);

  // Type mismatches name the attribute, what was found and what was expected.
  expect_error([&] { root.attr_int("s"); }, {p, "attribute 's'", "string", "expected an integer"});
  expect_error([&] { root.attr_string("i"); }, {"attribute 'i'", "int64", "expected a string"});
  expect_error([&] { root.attr_uint("i"); }, {"attribute 'i'", "-5", "non-negative"});
  expect_error([&] { root.attr_int("u"); }, {"attribute 'u'", "does not fit"});
  expect_error([&] { root.attr_double("s"); }, {"attribute 's'", "expected a number"});
  expect_error([&] { root.attr_int("iv"); }, {"attribute 'iv'", "3 values", "single value"});
  expect_error([&] { root.attr_string("nope"); }, {p, "/", "no attribute 'nope'"});
  expect_error([&] { root.group("g").attr_int("nope"); }, {"/g has no attribute 'nope'"});
}

TEST_F(Hdf5Test, ScalarAndEmptyDatasets) {
  const std::string p = path("scalar.h5");
  {
    File f = File::create(p);
    const double pi = 3.25;
    f.root().create_dataset("scalar", DType::kFloat64, {}).write(&pi);
    f.root().create_dataset("empty", DType::kFloat32, {0, 5});
    f.commit();
  }
  File f = File::open(p);
  Dataset s = f.root().dataset("scalar");
  EXPECT_TRUE(s.shape().empty());
  EXPECT_TRUE(s.chunks().empty());
  double v = 0;
  s.read(&v);
  EXPECT_EQ(v, 3.25);
  Dataset e = f.root().dataset("empty");
  EXPECT_EQ(e.shape(), (std::vector<std::int64_t>{0, 5}));
  e.read(static_cast<float*>(nullptr));  // nothing to read
}

TEST_F(Hdf5Test, DatasetsAreChunkedAndCompressed) {
  const std::string p = path("chunked.h5");
  const std::int64_t rows = 2000, cols = 500;  // 4 MB of float32
  {
    File f = File::create(p);
    std::vector<float> zeros(static_cast<std::size_t>(rows * cols), 0.0f);
    Dataset big = f.root().create_dataset("big", DType::kFloat32, {rows, cols});
    big.write(zeros.data());
    DatasetOptions explicit_chunks;
    explicit_chunks.chunks = {10, 1000};  // dim 1 is clamped to the extent
    explicit_chunks.compression = 0;
    f.root().create_dataset("explicit", DType::kFloat64, {30, 7}, explicit_chunks);
    DatasetOptions wide;
    f.root().create_dataset("wide", DType::kFloat32, {3, 1000000}, wide);
    f.commit();
  }
  // All-zero data compresses to far less than its 4 MB.
  EXPECT_LT(fs::file_size(p), 200000u);
  File f = File::open(p);
  Dataset big = f.root().dataset("big");
  const std::vector<std::int64_t> chunks = big.chunks();
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_GE(chunks[0], 1);
  EXPECT_LE(chunks[0], rows);
  EXPECT_EQ(chunks[1], cols);  // whole rows when a row fits
  EXPECT_LE(chunks[0] * chunks[1] * 4, (1 << 20) + cols * 4);
  EXPECT_GT(chunks[0] * chunks[1] * 4, (1 << 19));
  {
    Handle dcpl(H5Dget_create_plist(big.id()));
    ASSERT_EQ(H5Pget_nfilters(dcpl.get()), 2);
    unsigned flags = 0;
    EXPECT_EQ(H5Pget_filter_by_id2(dcpl.get(), H5Z_FILTER_SHUFFLE, &flags, nullptr, nullptr, 0,
                                   nullptr, nullptr),
              0);
    EXPECT_EQ(H5Pget_filter_by_id2(dcpl.get(), H5Z_FILTER_DEFLATE, &flags, nullptr, nullptr, 0,
                                   nullptr, nullptr),
              0);
  }
  Dataset ex = f.root().dataset("explicit");
  EXPECT_EQ(ex.chunks(), (std::vector<std::int64_t>{10, 7}));
  {
    Handle dcpl(H5Dget_create_plist(ex.id()));
    EXPECT_EQ(H5Pget_nfilters(dcpl.get()), 0);
  }
  const std::vector<std::int64_t> wide_chunks = f.root().dataset("wide").chunks();
  ASSERT_EQ(wide_chunks.size(), 2u);
  EXPECT_EQ(wide_chunks[0], 1);
  EXPECT_EQ(wide_chunks[1] * 4, 1 << 20);

  std::vector<float> part(2 * 3);
  big.read_slab({5, 7}, {2, 3}, part.data());
  EXPECT_EQ(part, std::vector<float>(6, 0.0f));
}

TEST_F(Hdf5Test, SlabsAndBoundsChecks) {
  const std::string p = path("slabs.h5");
  File f = File::create(p);
  Dataset ds = f.root().create_dataset("m", DType::kFloat32, {4, 3});
  std::vector<float> values(12);
  for (int i = 0; i < 12; ++i) values[i] = static_cast<float>(i);
  ds.write(values.data());
  const std::vector<float> patch = {100, 101};
  ds.write_slab({2, 1}, {1, 2}, patch.data());
  std::vector<float> row(3);
  ds.read_slab({2, 0}, {1, 3}, row.data());
  EXPECT_EQ(row, (std::vector<float>{6, 100, 101}));
  std::vector<double> col(4);
  ds.read_slab({0, 2}, {4, 1}, col.data());
  EXPECT_EQ(col, (std::vector<double>{2, 5, 101, 11}));
  expect_error(
      [&] {
        ds.read_slab({3, 0}, {2, 3}, row.data());
      },
      {"/m", "outside its shape", "[4, 3]"});
  expect_error([&] { ds.read_slab({0}, {1}, row.data()); }, {"/m", "rank 2"});
  expect_error([&] { ds.append_rows(1, values.data()); }, {"/m", "not extendible"});
  expect_error([&] { ds.resize_rows(2); }, {"/m", "not extendible"});
}

TEST_F(Hdf5Test, ExpectNamesFoundAndExpected) {
  const std::string p = path("expect.h5");
  File f = File::create(p);
  Dataset ds = f.root().create_dataset("v", DType::kFloat64, {3, 4});
  ds.expect(DType::kFloat64, {3, 4});
  ds.expect(DType::kFloat64, {-1, 4});
  expect_error(
      [&] {
        ds.expect(DType::kFloat32, {3, 4});
      },
      {p, "dataset /v", "dtype float64", "expected float32"});
  expect_error(
      [&] {
        ds.expect(DType::kFloat64, {-1, 5});
      },
      {p, "dataset /v", "shape [3, 4]", "expected [*, 5]"});
  expect_error([&] { ds.expect(DType::kFloat64, {12}); }, {"shape [3, 4]", "expected [12]"});
}

TEST_F(Hdf5Test, GroupsAndLookupErrors) {
  const std::string p = path("groups.h5");
  File f = File::create(p);
  Group& root = f.root();
  Group a = root.create_group("a");
  EXPECT_EQ(a.path(), "/a");
  Group b = a.create_group("b");
  EXPECT_EQ(b.path(), "/a/b");
  root.create_group("x/y");  // intermediate groups are created
  b.create_dataset("d", DType::kInt64, {2});
  EXPECT_TRUE(root.has("a"));
  EXPECT_TRUE(root.has("a/b/d"));
  EXPECT_TRUE(root.has("x/y"));
  EXPECT_FALSE(root.has("a/c"));
  EXPECT_FALSE(root.has("a/b/d/e"));
  EXPECT_FALSE(root.has("zz/y"));
  EXPECT_TRUE(root.is_group("a"));
  EXPECT_TRUE(root.is_group("a/b"));
  EXPECT_FALSE(root.is_group("a/b/d"));
  EXPECT_FALSE(root.is_group("missing"));
  EXPECT_EQ(root.children(), (std::vector<std::string>{"a", "x"}));
  EXPECT_EQ(a.children(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(root.dataset("a/b/d").path(), "/a/b/d");
  EXPECT_EQ(root.require_group("a").path(), "/a");
  EXPECT_EQ(root.require_group("new").path(), "/new");
  expect_error([&] { root.create_group("a"); }, {p, "/a", "already exists"});
  expect_error([&] { b.create_dataset("d", DType::kInt64, {2}); }, {"/a/b/d", "already exists"});
  expect_error([&] { root.dataset("nope"); },
               {p, "dataset /nope not found", "contains: a, new, x"});
  expect_error([&] { root.group("nope"); }, {p, "group /nope not found"});
  expect_error([&] { root.dataset("a"); }, {"/a is a group, expected a dataset"});
  expect_error([&] { a.group("b/d"); }, {"/a/b/d is a dataset, expected a group"});
  DatasetOptions bad;
  bad.compression = 12;
  expect_error([&] { root.create_dataset("c", DType::kFloat32, {3}, bad); }, {"compression", "12"});
}

TEST_F(Hdf5Test, ExtendibleAppendAndResize) {
  const std::string p = path("append.h5");
  {
    File f = File::create(p);
    DatasetOptions opts;
    opts.extendible = true;
    Dataset ds = f.root().create_dataset("rows", DType::kFloat32, {0, 4}, opts);
    EXPECT_FALSE(ds.chunks().empty());
    EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{0, 4}));
    std::vector<float> a(3 * 4), b(2 * 4);
    for (int i = 0; i < 12; ++i) a[i] = static_cast<float>(i);
    for (int i = 0; i < 8; ++i) b[i] = static_cast<float>(100 + i);
    ds.append_rows(3, a.data());
    ds.append_rows(0, b.data());
    ds.append_rows(2, b.data());
    EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{5, 4}));
    ds.resize_rows(4);  // drop the last row
    ds.resize_rows(6);  // grow: new rows hold the fill value 0
    Dataset ids = f.root().create_dataset("ids", DType::kInt64, {0}, opts);
    const std::vector<std::int64_t> some = {7, 8, 9};
    ids.append_rows(3, some.data());
    f.commit();
  }
  File f = File::open(p);
  Dataset ds = f.root().dataset("rows");
  EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{6, 4}));
  std::vector<float> all(24);
  ds.read(all.data());
  for (int i = 0; i < 12; ++i) EXPECT_EQ(all[i], static_cast<float>(i));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(all[12 + i], static_cast<float>(100 + i));
  for (int i = 16; i < 24; ++i) EXPECT_EQ(all[i], 0.0f);
  std::vector<std::int64_t> ids(3);
  f.root().dataset("ids").read(ids.data());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{7, 8, 9}));
}

TEST_F(Hdf5Test, ResumableWriterAcrossReopen) {
  const std::string p = path("resume.h5");
  const std::string partial = File::temp_path(p);
  EXPECT_EQ(partial, p + ".partial");
  EXPECT_FALSE(File::resume(p).valid());  // nothing to resume yet

  std::vector<float> first(10 * 3), second(7 * 3);
  for (std::size_t i = 0; i < first.size(); ++i) first[i] = static_cast<float>(i);
  for (std::size_t i = 0; i < second.size(); ++i) second[i] = static_cast<float>(1000 + i);
  {
    File f = File::create(p);
    f.keep_partial();
    f.root().set_attr("rows_done", std::int64_t{0});
    DatasetOptions opts;
    opts.extendible = true;
    Dataset ds = f.root().create_dataset("vectors", DType::kFloat32, {0, 3}, opts);
    ds.append_rows(10, first.data());
    f.root().set_attr("rows_done", std::int64_t{10});
    f.flush();
  }  // "crash": destroyed without commit
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(fs::exists(partial));
  {
    File f = File::resume(p);
    ASSERT_TRUE(f.valid());
    EXPECT_EQ(f.path(), p);
    EXPECT_EQ(f.root().attr_int("rows_done"), 10);
    Dataset ds = f.root().dataset("vectors");
    EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{10, 3}));
    ds.append_rows(7, second.data());
    f.root().set_attr("rows_done", std::int64_t{17});
    f.commit();
  }
  EXPECT_TRUE(fs::exists(p));
  EXPECT_FALSE(fs::exists(partial));
  File f = File::open(p);
  Dataset ds = f.root().dataset("vectors");
  EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{17, 3}));
  std::vector<float> all(17 * 3);
  ds.read(all.data());
  std::vector<float> expected = first;
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(all, expected);
  EXPECT_EQ(f.root().attr_int("rows_done"), 17);
}

TEST_F(Hdf5Test, ResumedFileIsKeptWhenNotCommitted) {
  const std::string p = path("keep.h5");
  {
    File f = File::create(p);
    f.keep_partial();
  }
  { File f = File::resume(p); }  // resume() keeps the partial by default
  EXPECT_TRUE(fs::exists(File::temp_path(p)));
}

TEST_F(Hdf5Test, ResumeOfCorruptPartialFails) {
  const std::string p = path("bad_partial.h5");
  { std::ofstream(File::temp_path(p)) << "not hdf5"; }
  expect_error([&] { File::resume(p); }, {"cannot resume", "not an HDF5 file", "delete it"});
}

TEST_F(Hdf5Test, CommitIsAtomic) {
  const std::string p = path("atomic.h5");
  const std::string partial = File::temp_path(p);
  {
    File f = File::create(p);
    EXPECT_EQ(f.path(), p);
    EXPECT_TRUE(fs::exists(partial));
    f.root().create_dataset("x", DType::kFloat32, {2});
    f.flush();
    EXPECT_FALSE(fs::exists(p));
    f.commit();
    EXPECT_FALSE(f.valid());
    EXPECT_TRUE(fs::exists(p));
    EXPECT_FALSE(fs::exists(partial));
  }
  EXPECT_TRUE(fs::exists(p));  // the destructor after commit leaves it alone
  // Committing again over an existing final file replaces it.
  {
    File f = File::create(p);
    f.root().create_dataset("y", DType::kFloat32, {2});
    EXPECT_TRUE(File::open(p).root().has("x"));  // the old file is intact meanwhile
    f.commit();
  }
  File f = File::open(p);
  EXPECT_TRUE(f.root().has("y"));
  EXPECT_FALSE(f.root().has("x"));
}

TEST_F(Hdf5Test, CommitClosesObjectsStillOpen) {
  const std::string p = path("open_objects.h5");
  File f = File::create(p);
  Dataset ds = f.root().create_dataset("x", DType::kFloat32, {3});
  Group g = f.root().create_group("g");
  const std::vector<float> v = {1, 2, 3};
  ds.write(v.data());
  f.commit();  // ds and g are still alive here; their handles are closed by the commit
  File r = File::open(p);
  std::vector<float> back(3);
  r.root().dataset("x").read(back.data());
  EXPECT_EQ(back, v);
}

TEST_F(Hdf5Test, DestroyedWithoutCommitRemovesTemp) {
  const std::string p = path("abandoned.h5");
  {
    File f = File::create(p);
    f.root().create_dataset("x", DType::kFloat32, {2});
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(File::temp_path(p)));
  {
    File f = File::create(p);
    f.close();
    EXPECT_FALSE(f.valid());
  }
  EXPECT_FALSE(fs::exists(File::temp_path(p)));
  // Moving a File moves the responsibility for its temporary file.
  {
    File f = File::create(p);
    File g = std::move(f);
    EXPECT_TRUE(fs::exists(File::temp_path(p)));
  }
  EXPECT_FALSE(fs::exists(File::temp_path(p)));
}

TEST_F(Hdf5Test, KeepPartialKeepsTemp) {
  const std::string p = path("partial.h5");
  {
    File f = File::create(p);
    f.keep_partial();
    f.root().create_dataset("x", DType::kFloat32, {2});
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(fs::exists(File::temp_path(p)));
  // A new create() overwrites a stale partial file.
  {
    File f = File::create(p);
    EXPECT_FALSE(f.root().has("x"));
  }
  EXPECT_FALSE(fs::exists(File::temp_path(p)));
}

TEST_F(Hdf5Test, MisuseIsReported) {
  const std::string p = path("misuse.h5");
  write_matrix_file(p, 4, 4);
  File f = File::open(p);
  EXPECT_THROW(f.commit(), InternalError);  // not created by File::create
  Dataset ds = f.root().dataset("x");
  std::vector<float> v(16, 1.0f);
  expect_error([&] { ds.write(v.data()); }, {p, "/x", "cannot write"});
  expect_error([&] { f.root().set_attr("a", 1); }, {p, "cannot write attribute 'a'"});
  expect_error([&] { f.root().create_group("g"); }, {p, "cannot create group /g"});
  File rw = File();
  EXPECT_FALSE(rw.valid());
}

TEST_F(Hdf5Test, ReadWriteModeEditsInPlace) {
  const std::string p = path("rw.h5");
  write_matrix_file(p, 4, 4);
  {
    File f = File::open(p, OpenMode::kReadWrite);
    f.root().set_attr("note", "edited");
    f.close();
  }
  EXPECT_EQ(File::open(p).root().attr_string("note"), "edited");
}

TEST_F(Hdf5Test, OpenMissingFile) {
  expect_error([&] { File::open(path("missing.h5")); }, {path("missing.h5"), "no such file"});
  expect_error([&] { File::open(dir_.string()); }, {"is a directory"});
}

TEST_F(Hdf5Test, OpenNonHdf5File) {
  const std::string p = path("text.h5");
  { std::ofstream(p) << "this is plain text, not HDF5\n"; }
  expect_error([&] { File::open(p); }, {p, "is not an HDF5 file"});
  const std::string empty = path("empty.h5");
  { std::ofstream out(empty); }
  expect_error([&] { File::open(empty); }, {empty, "is not an HDF5 file"});
}

TEST_F(Hdf5Test, OpenTruncatedFile) {
  const std::string p = path("full.h5");
  write_matrix_file(p, 3000, 200);  // several chunks of incompressible-ish data
  const std::uintmax_t size = fs::file_size(p);
  ASSERT_GT(size, 10000u);
  for (std::uintmax_t bytes : {size / 2, size - 1, std::uintmax_t{100}, std::uintmax_t{8}}) {
    const std::string t = path("truncated_" + std::to_string(bytes) + ".h5");
    fs::copy_file(p, t);
    truncate_to(t, bytes);
    try {
      File f = File::open(t);
      ADD_FAILURE() << "opened a file truncated to " << bytes << " bytes";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_TRUE(contains(msg, t)) << msg;
      EXPECT_TRUE(msg.find("truncated or corrupt") != std::string::npos ||
                  msg.find("not an HDF5 file") != std::string::npos)
          << msg;
    }
  }
}

TEST_F(Hdf5Test, CorruptChunkIsReportedOnRead) {
  const std::string p = path("corrupt.h5");
  write_matrix_file(p, 3000, 200);
  haddr_t addr = 0;
  hsize_t chunk_bytes = 0;
  {
    File f = File::open(p);
    Dataset ds = f.root().dataset("x");
    hsize_t nchunks = 0;
    Handle space(H5Dget_space(ds.id()));
    ASSERT_GE(H5Dget_num_chunks(ds.id(), space.get(), &nchunks), 0);
    ASSERT_GT(nchunks, 1u);
    ASSERT_GE(
        H5Dget_chunk_info(ds.id(), space.get(), nchunks - 1, nullptr, nullptr, &addr, &chunk_bytes),
        0);
  }
  ASSERT_GT(chunk_bytes, 16u);
  {
    std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(addr));
    const std::string garbage(static_cast<std::size_t>(chunk_bytes), '\xa5');
    io.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  File f = File::open(p);  // metadata is intact
  Dataset ds = f.root().dataset("x");
  EXPECT_EQ(ds.shape(), (std::vector<std::int64_t>{3000, 200}));
  std::vector<float> all(3000 * 200);
  expect_error([&] { ds.read(all.data()); },
               {p, "dataset /x could not be read: file truncated or corrupt"});
  float last = 0;
  expect_error([&] { ds.read_slab({2999, 199}, {1, 1}, &last); }, {"could not be read"});
  float first = -1;
  ds.read_slab({0, 0}, {1, 1}, &first);  // the first chunk is fine
  EXPECT_EQ(first, 0.0f);
}

TEST_F(Hdf5Test, CreateInMissingDirectoryFails) {
  const std::string p = path("no/such/dir/out.h5");
  expect_error([&] { File::create(p); }, {p, "cannot create"});
}

}  // namespace
}  // namespace npeff::io
