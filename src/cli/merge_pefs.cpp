// npeff merge-pefs: concatenates compute-pefs shard files into one npeff.pefs file.
#include <nlohmann/json.hpp>

#include "cli/subcommands.h"
#include "npeff/io/pef_writer.h"

namespace npeff::cli {
namespace {

struct MergePefsOptions {
  std::vector<std::string> inputs;  ///< shard files, in order (required)
  std::string out;                  ///< output file (required)
  bool copy = false;                ///< self-contained output (PEFs copied)
  bool json = false;
};

int run_merge_pefs(const MergePefsOptions& o) {
  PathCheck inputs;
  inputs.files("--pefs", o.inputs);
  inputs.throw_if_any();
  const int64_t m = io::merge_pef_files(
      o.inputs, o.out, {{"command", "merge-pefs"}, {"inputs", o.inputs}, {"copy", o.copy}}, o.copy);
  return report_success(o.out,
                        {{"command", "merge-pefs"},
                         {"output", o.out},
                         {"inputs", o.inputs},
                         {"examples", m},
                         {"self_contained", o.copy}},
                        o.json);
}

}  // namespace

void add_merge_pefs_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto o = std::make_shared<MergePefsOptions>();
  CLI::App* sub = app.add_subcommand(
      "merge-pefs",
      "Concatenate npeff.pefs files (e.g. compute-pefs --shard I/N outputs) into one, in the\n"
      "order given. The files must share rank, d, projection and selected parameters. (decompose\n"
      "and fit-coeffs also take the shard files directly.) The PEFs are not copied: the output's\n"
      "/pefs is an HDF5 virtual dataset over the part files the inputs read from (FILE.parts/,\n"
      "named relative to the output's folder; h5py reads it as one array), so keep those folders\n"
      "where they are, or pass --copy for a self-contained file (also the way to turn one\n"
      "compute-pefs output into a single file to move elsewhere).\n"
      "Examples:\n  npeff merge-pefs --pefs sst2.0.h5 sst2.1.h5 sst2.2.h5 -o sst2.h5\n"
      "  npeff merge-pefs --copy --pefs sst2.h5 -o /scratch/sst2-standalone.h5");
  sub->add_option("--pefs,-p", o->inputs, "npeff.pefs files, in order")
      ->required()
      ->expected(1, -1);
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  sub->add_flag("--copy", o->copy,
                "Copy the PEFs into the output (self-contained; converted to the first file's "
                "dtype) instead of referencing the inputs' part files");
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &runner] { runner = [o] { return run_merge_pefs(*o); }; });
}

}  // namespace npeff::cli
