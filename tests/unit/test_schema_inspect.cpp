// Tests of the npeff schema header (write_header / read_schema / expect_schema / provenance) and
// of inspect_file on good, foreign, broken and unsupported files.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "npeff/core/error.h"
#include "npeff/core/version.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/inspect.h"
#include "npeff/io/schema.h"
#include "unit/test_util.h"

namespace npeff::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SchemaTest : public npeff::testing::TempDirTest {
 protected:
  void TearDown() override {
    TempDirTest::TearDown();
    set_command_line("");
  }
};

using npeff::testing::contains;
using npeff::testing::expect_error;

json sample_provenance() {
  return {{"seed", 42},
          {"source", {{"file", "in.h5"}, {"dataset", "/vectors"}}},
          {"hyperparameters", {{"dim", 4}, {"kind", "sparse"}}}};
}

// An npeff.projected file as `npeff project` writes it.
void write_projected(const std::string& p, const SchemaId& schema = {"npeff.projected", 1},
                     std::int64_t rows = 10, std::int64_t d = 4) {
  File f = File::create(p);
  write_header(f, schema, sample_provenance());
  Group g = f.root().create_group("projection");
  g.set_attr("seed", std::uint64_t{42});
  g.set_attr("dim", d);
  g.set_attr("region_size", std::int64_t{1024});
  g.set_attr("kind", "sparse");
  g.set_attr("scale", 0.5);
  g.set_attr("input_dim", std::int64_t{100});
  g.set_attr("input_offset", std::int64_t{0});
  g.set_attr("generator", "npeff-hash32x2-v1");
  std::vector<float> data(static_cast<std::size_t>(rows * d));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i) * 0.25f;
  Dataset ds = f.root().create_dataset("projected", DType::kFloat32, {rows, d});
  ds.write(data.data());
  f.commit();
}

TEST(Schema, KnownSchemas) {
  const std::vector<SchemaInfo>& schemas = known_schemas();
  std::vector<std::string> names;
  for (const SchemaInfo& s : schemas) {
    names.emplace_back(s.name);
    EXPECT_GE(s.version, 1);
    EXPECT_GT(std::string(s.description).size(), 10u);
  }
  for (const char* expected :
       {"npeff.vectors", "npeff.projected", "npeff.pefs", "npeff.decomposition",
        "npeff.decomposition_checkpoint", "npeff.coefficients"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
}

TEST(Schema, EverySchemaIsDocumented) {
  // docs/formats.md must have a "### `NAME` version N" section for each schema npeff writes.
  const char* source = std::getenv("NPEFF_SOURCE_DIR");
  if (source == nullptr) GTEST_SKIP() << "NPEFF_SOURCE_DIR not set (run through ctest)";
  std::ifstream in(std::string(source) + "/docs/formats.md");
  ASSERT_TRUE(in.good()) << "cannot read docs/formats.md";
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const SchemaInfo& s : known_schemas()) {
    const std::string heading =
        "### `" + std::string(s.name) + "` version " + std::to_string(s.version);
    EXPECT_NE(doc.find(heading), std::string::npos) << "docs/formats.md lacks: " << heading;
  }
}

TEST_F(SchemaTest, HeaderRoundTrip) {
  const std::string p = path("header.h5");
  set_command_line("npeff project in.h5 --out header.h5 --proj-seed 42");
  write_projected(p);
  File f = File::open(p);
  const SchemaId id = read_schema(f);
  EXPECT_EQ(id.name, "npeff.projected");
  EXPECT_EQ(id.version, 1);
  const Group& root = f.root();
  EXPECT_EQ(root.attr_string("npeff_version"), npeff::version());
  EXPECT_EQ(root.attr_string("command_line"), "npeff project in.h5 --out header.h5 --proj-seed 42");
  EXPECT_TRUE(std::regex_match(root.attr_string("created_utc"),
                               std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")))
      << root.attr_string("created_utc");
  EXPECT_EQ(read_provenance(f), sample_provenance());
  expect_schema(f, "npeff.projected", 1);
}

TEST_F(SchemaTest, ExpectSchemaMessages) {
  const std::string p = path("projected.h5");
  write_projected(p);
  File f = File::open(p);
  expect_error([&] { expect_schema(f, "npeff.vectors", 1); },
               {p + ": expected an 'npeff.vectors' file, found 'npeff.projected'"});

  const std::string newer = path("newer.h5");
  write_projected(newer, {"npeff.projected", 7});
  File g = File::open(newer);
  expect_error([&] { expect_schema(g, "npeff.projected", 1); },
               {newer + ": schema 'npeff.projected' version 7 is not supported by this npeff (" +
                npeff::version() + "), which reads version 1"});
}

TEST_F(SchemaTest, FileWithoutSchemaAttributes) {
  const std::string p = path("plain.h5");
  {
    File f = File::create(p);
    f.root().create_dataset("x", DType::kFloat32, {3});
    f.commit();
  }
  File f = File::open(p);
  expect_error([&] { read_schema(f); }, {p, "is not an npeff file: no npeff_schema attribute"});
  expect_error([&] { expect_schema(f, "npeff.vectors", 1); }, {"is not an npeff file"});
  EXPECT_EQ(read_provenance(f), json::object());
  expect_error([&] { inspect_file(p); }, {p, "is not an npeff file"});
}

TEST_F(SchemaTest, BadProvenanceIsReported) {
  const std::string p = path("bad_prov.h5");
  {
    File f = File::create(p);
    write_header(f, {"npeff.vectors", 1}, json::object());
    f.root().set_attr("provenance", "{not json");
    f.commit();
  }
  File f = File::open(p);
  expect_error([&] { read_provenance(f); }, {p, "provenance", "not a JSON object"});
}

TEST_F(SchemaTest, InspectGoodFile) {
  const std::string p = path("good.h5");
  set_command_line("npeff project x");
  write_projected(p, {"npeff.projected", 1}, 10, 4);
  const json s = inspect_file(p);
  EXPECT_EQ(s["path"], p);
  EXPECT_EQ(s["schema"], "npeff.projected");
  EXPECT_EQ(s["schema_version"], 1);
  EXPECT_EQ(s["npeff_version"], npeff::version());
  EXPECT_EQ(s["command_line"], "npeff project x");
  EXPECT_FALSE(s["created_utc"].get<std::string>().empty());
  EXPECT_EQ(s["provenance"], sample_provenance());
  EXPECT_EQ(s["attributes"]["npeff_schema"], "\"npeff.projected\"");
  EXPECT_EQ(s["attributes"]["npeff_schema_version"], "1");

  ASSERT_EQ(s["groups"].size(), 1u);
  const json& g = s["groups"][0];
  EXPECT_EQ(g["path"], "/projection");
  EXPECT_EQ(g["attributes"]["seed"], "42");
  EXPECT_EQ(g["attributes"]["kind"], "\"sparse\"");
  EXPECT_EQ(g["attributes"]["scale"], "0.5");
  EXPECT_EQ(g["attributes"]["generator"], "\"npeff-hash32x2-v1\"");

  ASSERT_EQ(s["datasets"].size(), 1u);
  const json& d = s["datasets"][0];
  EXPECT_EQ(d["path"], "/projected");
  EXPECT_EQ(d["dtype"], "float32");
  EXPECT_EQ(d["shape"], json::array({10, 4}));
  EXPECT_EQ(d["chunks"], json::array({10, 4}));
  EXPECT_EQ(d["filters"], json::array({"shuffle", "deflate(4)"}));
  EXPECT_TRUE(d["attributes"].is_object());

  const std::string text = format_inspection(s);
  EXPECT_TRUE(contains(text, p)) << text;
  EXPECT_TRUE(contains(text, "npeff.projected version 1")) << text;
  EXPECT_TRUE(contains(text, "/projection")) << text;
  EXPECT_TRUE(contains(text, "seed = 42")) << text;
  EXPECT_TRUE(contains(text, "/projected  float32 [10, 4]  chunks [10, 4]  shuffle+deflate(4)"))
      << text;
  EXPECT_TRUE(contains(text, "npeff project x")) << text;
  EXPECT_TRUE(contains(text, "\"seed\": 42")) << text;
}

TEST_F(SchemaTest, InspectNestedGroupsAndOtherDtypes) {
  const std::string p = path("nested.h5");
  {
    File f = File::create(p);
    write_header(f, {"npeff.vectors", 1}, json::object());
    DatasetOptions opts;
    opts.extendible = true;
    Dataset v = f.root().create_dataset("vectors", DType::kFloat16, {0, 3}, opts);
    const std::vector<float> rows = {1, 2, 3, 4, 5, 6};
    v.append_rows(2, rows.data());
    f.root().create_group("a/b").create_strings("names", {"x", "y"});
    f.root().create_dataset("a/ids", DType::kInt64, {0});
    f.commit();
  }
  const json s = inspect_file(p);
  std::vector<std::string> groups, datasets;
  for (const json& g : s["groups"]) groups.push_back(g["path"]);
  for (const json& d : s["datasets"]) datasets.push_back(d["path"]);
  EXPECT_EQ(groups, (std::vector<std::string>{"/a", "/a/b"}));
  EXPECT_EQ(datasets, (std::vector<std::string>{"/a/b/names", "/a/ids", "/vectors"}));
  EXPECT_EQ(s["datasets"][0]["dtype"], "string");
  EXPECT_EQ(s["datasets"][0]["chunks"], json::array());
  EXPECT_EQ(s["datasets"][2]["dtype"], "float16");
  EXPECT_EQ(s["datasets"][2]["shape"], json::array({2, 3}));
  EXPECT_TRUE(contains(format_inspection(s), "/a/b/names  string [2]  contiguous"))
      << format_inspection(s);
}

TEST_F(SchemaTest, InspectLargeDatasetReadsEnds) {
  const std::string p = path("large.h5");
  const std::int64_t rows = 5000, cols = 1000;  // 5M elements: checked at its first/last chunk
  {
    File f = File::create(p);
    write_header(f, {"npeff.vectors", 1}, json::object());
    DatasetOptions opts;
    opts.extendible = true;
    Dataset ds = f.root().create_dataset("vectors", DType::kFloat32, {0, cols}, opts);
    std::vector<float> block(500 * cols, 1.0f);
    for (int i = 0; i < rows / 500; ++i) ds.append_rows(500, block.data());
    f.commit();
  }
  const json s = inspect_file(p);
  EXPECT_EQ(s["datasets"][0]["shape"], json::array({rows, cols}));
}

TEST_F(SchemaTest, InspectUnknownSchema) {
  const std::string p = path("unknown.h5");
  write_projected(p, {"npeff.frobnicated", 1});
  expect_error([&] { inspect_file(p); },
               {p, "unknown npeff schema 'npeff.frobnicated'", "npeff.vectors, npeff.projected"});
}

TEST_F(SchemaTest, InspectNewerVersion) {
  const std::string p = path("v7.h5");
  write_projected(p, {"npeff.projected", 7});
  expect_error([&] { inspect_file(p); },
               {p + ": schema 'npeff.projected' version 7 is not supported by this npeff (" +
                npeff::version() + "), which reads version 1"});
}

TEST_F(SchemaTest, InspectMissingAndForeignFiles) {
  expect_error([&] { inspect_file(path("missing.h5")); }, {"missing.h5", "no such file"});
  const std::string text = path("notes.txt");
  { std::ofstream(text) << "hello\n"; }
  expect_error([&] { inspect_file(text); }, {text, "is not an HDF5 file"});
}

TEST_F(SchemaTest, InspectTruncatedFile) {
  const std::string p = path("good.h5");
  write_projected(p, {"npeff.projected", 1}, 3000, 200);
  const std::uintmax_t size = fs::file_size(p);
  for (std::uintmax_t bytes : {size / 2, std::uintmax_t{100}}) {
    const std::string t = path("truncated_" + std::to_string(bytes) + ".h5");
    fs::copy_file(p, t);
    fs::resize_file(t, bytes);
    try {
      inspect_file(t);
      ADD_FAILURE() << "inspected a file truncated to " << bytes << " bytes";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_TRUE(contains(msg, t)) << msg;
      EXPECT_TRUE(msg.find("truncated or corrupt") != std::string::npos ||
                  msg.find("not an HDF5 file") != std::string::npos)
          << msg;
    }
  }
}

// A file whose metadata is intact but whose last data chunk is garbage.
TEST_F(SchemaTest, InspectCorruptData) {
  const std::string p = path("corrupt.h5");
  write_projected(p, {"npeff.projected", 1}, 3000, 200);
  haddr_t addr = 0;
  hsize_t bytes = 0;
  {
    File f = File::open(p);
    Dataset ds = f.root().dataset("projected");
    Handle space(H5Dget_space(ds.id()));
    hsize_t n = 0;
    ASSERT_GE(H5Dget_num_chunks(ds.id(), space.get(), &n), 0);
    ASSERT_GT(n, 1u);
    ASSERT_GE(H5Dget_chunk_info(ds.id(), space.get(), n - 1, nullptr, nullptr, &addr, &bytes), 0);
  }
  {
    std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(addr));
    const std::string garbage(static_cast<std::size_t>(bytes), '\x5a');
    io.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  expect_error([&] { inspect_file(p); },
               {p, "dataset /projected could not be read: file truncated or corrupt"});
}

}  // namespace
}  // namespace npeff::io
