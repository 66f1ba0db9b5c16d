// Writes small broken or unusual npeff files for tests/cli/test_cli.sh:
//   wrong_version.h5   an npeff.vectors file claiming schema version 99
//   unknown_schema.h5  a file whose npeff_schema names no known schema
//   no_schema.h5       a valid HDF5 file without npeff attributes
// Usage: make_test_files DIR
#include <nlohmann/json.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"

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
  return 0;
}
