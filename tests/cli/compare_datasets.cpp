// Compares a float dataset of two HDF5 files: prints ||a - b||_F / ||a||_F and exits 0 when it
// is at most RTOL (1 otherwise, 2 on bad input). Usage: compare_datasets A B DATASET RTOL
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/hdf5.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: compare_datasets A B DATASET RTOL\n");
    return 2;
  }
  try {
    auto read = [&](const char* path) {
      const npeff::io::File f = npeff::io::File::open(path);
      const npeff::io::Dataset ds = f.root().dataset(argv[3]);
      std::size_t count = 1;
      for (auto dim : ds.shape()) count *= static_cast<std::size_t>(dim);
      std::vector<double> v(count);
      ds.read(v.data());
      return v;
    };
    const std::vector<double> a = read(argv[1]), b = read(argv[2]);
    if (a.size() != b.size()) {
      std::printf("sizes differ: %zu vs %zu\n", a.size(), b.size());
      return 1;
    }
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      diff += (a[i] - b[i]) * (a[i] - b[i]);
      norm += a[i] * a[i];
    }
    const double rel = std::sqrt(diff) / std::sqrt(norm);
    std::printf("%s: relative difference %.3e\n", argv[3], rel);
    return rel <= std::atof(argv[4]) ? 0 : 1;
  } catch (const npeff::Error& e) {
    std::fprintf(stderr, "compare_datasets: %s\n", e.what());
    return 2;
  }
}
