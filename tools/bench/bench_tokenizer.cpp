// Tokenizer throughput: encode every sentence of a text file (SST-2 train by default) one call at
// a time on one thread, repeated until at least --seconds have passed. Reports tokens/s and
// MB/s; tools/bench/tokenizer.sh runs it next to HF `tokenizers` (the peer) on the same texts.
//   bench_tokenizer --tokenizer T [--texts ../shared/data/sst2/train.tsv] [--seconds 3] [--json]
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  std::string tokenizer, texts_path = "../shared/data/sst2/train.tsv";
  double seconds = 3.0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tokenizer" && i + 1 < argc)
      tokenizer = argv[++i];
    else if (a == "--texts" && i + 1 < argc)
      texts_path = argv[++i];
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::stod(argv[++i]);
    else if (a == "--json")
      json = true;
    else {
      std::cerr << "usage: bench_tokenizer --tokenizer PATH [--texts TSV] [--seconds S] [--json]\n";
      return 2;
    }
  }
  try {
    const auto tok = npeff::tokenizer::load_tokenizer(tokenizer);
    std::ifstream in(texts_path);
    NPEFF_CHECK(in.good(), "cannot open ", texts_path);
    std::vector<std::string> texts;
    std::string line;
    std::getline(in, line);  // header
    size_t bytes = 0;
    while (std::getline(in, line)) {
      texts.push_back(line.substr(0, line.rfind('\t')));
      bytes += texts.back().size();
    }
    npeff::tokenizer::EncodeOptions options;
    options.add_special_tokens = false;
    // The first pass fills the per-thread word cache (cold); later passes are steady state.
    const auto cold_start = std::chrono::steady_clock::now();
    int64_t cold_tokens = 0;
    for (const std::string& t : texts)
      cold_tokens += static_cast<int64_t>(tok.encode(t, options).size());
    const double cold =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - cold_start).count();
    const double cold_tps = static_cast<double>(cold_tokens) / cold;
    int64_t tokens = 0, passes = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      for (const std::string& t : texts)
        tokens += static_cast<int64_t>(tok.encode(t, options).size());
      ++passes;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < seconds);
    const double tps = static_cast<double>(tokens) / elapsed;
    const double mbps = static_cast<double>(bytes) * static_cast<double>(passes) / elapsed / 1e6;
    if (json) {
      std::cout << "{\"tokenizer\": \"" << tokenizer << "\", \"texts\": " << texts.size()
                << ", \"passes\": " << passes << ", \"tokens_per_pass\": " << tokens / passes
                << ", \"tokens_per_s\": " << tps << ", \"first_pass_tokens_per_s\": " << cold_tps
                << ", \"mb_per_s\": " << mbps << "}\n";
    } else {
      std::cout << tok.description() << "\n  " << texts.size() << " texts x " << passes
                << " passes, " << tokens / passes << " tokens/pass: " << tps / 1e6
                << " M tokens/s, " << mbps << " MB/s (1 thread); first pass " << cold_tps / 1e6
                << " M tokens/s\n";
    }
  } catch (const npeff::Error& e) {
    std::cerr << "bench_tokenizer: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
