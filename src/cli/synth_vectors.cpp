// npeff synth-vectors: seeded random vectors as an npeff.vectors file, for trying the pipeline
// and for benchmarks (standard normal entries, generated in fixed column blocks so the result
// depends only on the seed and the shape).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/error.h"
#include "npeff/core/progress.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"

namespace npeff::cli {
namespace {

constexpr std::int64_t kBlockColumns = 1 << 18;  // fixed: part of the output's definition

struct SynthVectorsOptions {
  std::int64_t rows = 1;   ///< number of vectors
  std::int64_t dim = 0;    ///< length n of each vector (required)
  std::uint64_t seed = 0;  ///< generator seed
  std::string out;         ///< output file (required)
  bool json = false;       ///< JSON summary on stdout
};

int run_synth_vectors(const SynthVectorsOptions& o) {
  NPEFF_CHECK(o.rows > 0, "--rows must be positive, got ", o.rows);
  NPEFF_CHECK(o.dim > 0, "--input-dim must be positive, got ", o.dim);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  io::File file = io::File::create(o.out);
  io::write_header(file, {"npeff.vectors", 1},
                   {{"command", "synth-vectors"},
                    {"distribution", "normal(0, 1)"},
                    {"seed", o.seed},
                    {"rows", o.rows},
                    {"dim", o.dim}});
  io::Dataset ds = file.root().create_dataset("vectors", io::DType::kFloat32, {o.rows, o.dim});
  Progress progress("synth-vectors", o.dim, "columns");
  for (std::int64_t c0 = 0; c0 < o.dim; c0 += kBlockColumns) {
    const std::int64_t cols = std::min(kBlockColumns, o.dim - c0);
    at::Tensor block = at::randn({o.rows, cols}, gen, at::kFloat).contiguous();
    ds.write_slab({0, c0}, {o.rows, cols}, block.data_ptr<float>());
    progress.advance(cols);
  }
  progress.finish();
  file.commit();
  return report_success(o.out,
                        nlohmann::json{{"command", "synth-vectors"},
                                       {"output", o.out},
                                       {"rows", o.rows},
                                       {"dim", o.dim},
                                       {"seed", o.seed}},
                        o.json);
}

}  // namespace

void add_synth_vectors_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<SynthVectorsOptions>();
  CLI::App* sub = app.add_subcommand(
      "synth-vectors",
      "Write seeded standard-normal vectors [rows, dim] as an npeff.vectors file.\n"
      "Example:\n  npeff synth-vectors --rows 8 --input-dim 1000000 --seed 1 --out x.h5");
  sub->add_option("--rows", o->rows, "Number of vectors")->capture_default_str();
  sub->add_option("--input-dim", o->dim, "Length n of each vector")->required();
  sub->add_option("--seed", o->seed, "Generator seed")->capture_default_str();
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &runner] { runner = [o] { return run_synth_vectors(*o); }; });
}

}  // namespace npeff::cli
