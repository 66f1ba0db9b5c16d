// Writes small broken or unusual npeff files for tests/cli/test_cli.sh:
//   wrong_version.h5   an npeff.vectors file claiming schema version 99
//   unknown_schema.h5  a file whose npeff_schema names no known schema
//   no_schema.h5       a valid HDF5 file without npeff attributes
//   bad_pefs.h5        npeff.pefs, 20 x 2 x 16, example 3 has a NaN, example 5 is all zero
//   projected_pefs.h5  npeff.pefs, 20 x 2 x 16, with a /projection group (seed 1, d 16)
// Usage: make_test_files DIR
#include <nlohmann/json.hpp>

#include <iostream>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include <cmath>

#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/schema.h"
#include "npeff/projection/projection_record.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_test_files DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<float> data(6, 1.0f);
  auto write = [&](const std::string& name, const char* schema, std::int64_t version) {
    npeff::io::File f = npeff::io::File::create(dir + "/" + name);
    if (schema) npeff::io::write_header(f, {schema, version}, nlohmann::json::object());
    f.root().create_dataset("vectors", npeff::io::DType::kFloat32, {2, 3}).write(data.data());
    f.commit();
  };
  write("wrong_version.h5", "npeff.vectors", 99);
  write("unknown_schema.h5", "npeff.nonsense", 1);
  write("no_schema.h5", nullptr, 0);

  auto write_pefs = [&](const std::string& name, bool broken, bool projected) {
    at::Tensor g = at::randn({20, 2, 16});
    if (broken) {
      g[3][1][7] = NAN;
      g[5].zero_();
    }
    npeff::io::File f = npeff::io::File::create(dir + "/" + name);
    npeff::io::write_header(f, {npeff::io::kPefSchema, npeff::io::kPefSchemaVersion},
                            nlohmann::json::object());
    const auto record = npeff::projection::make_record(
        npeff::projection::Projection({1, 16, 0, npeff::projection::Kind::kSparse}), 1000);
    npeff::io::write_pefs(f, g, at::arange(20, at::kLong), at::ones({20}, at::kDouble),
                          projected ? &record : nullptr);
    f.commit();
  };
  write_pefs("bad_pefs.h5", true, false);
  write_pefs("projected_pefs.h5", false, true);
  return 0;
}
