// The texts of ../shared/data enumerated as tools/fixtures/make_tokenizer_fixtures.py does (see
// tests/fixtures/README.md): the fixture hashes are over exactly these lists, in this order.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace npeff::testing {

// (dataset name, texts), in the fixture order: sst2/train, sst2/validation, clinc150, yahoo,
// triviaqa. Empty when `data_dir` does not exist.
std::vector<std::pair<std::string, std::vector<std::string>>> shared_texts(
    const std::string& data_dir);

// FNV-1a 64 as the fixtures use it.
struct Fnv1a64 {
  unsigned long long h = 0xcbf29ce484222325ULL;
  void add(const void* data, size_t n) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  }
  std::string hex() const;
};

}  // namespace npeff::testing
