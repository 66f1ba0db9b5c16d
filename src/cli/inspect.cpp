// npeff inspect FILE: schema, version, shapes, dtypes and provenance of any npeff file.
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/io/inspect.h"

namespace npeff::cli {
namespace {

struct InspectOptions {
  std::string path;   ///< file to inspect (required)
  bool json = false;  ///< print the summary as JSON on stdout
};

int run_inspect(const InspectOptions& options) {
  const nlohmann::json summary = io::inspect_file(options.path);
  if (options.json)
    std::cout << summary.dump(2) << "\n";
  else
    std::cout << io::format_inspection(summary);
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, const GlobalOptions&, Runner& runner) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* sub = app.add_subcommand(
      "inspect",
      "Summarise an npeff file: schema, version, datasets (shape, dtype, chunks), provenance.\n"
      "Exits 2 with a message for missing, non-HDF5, truncated, corrupt or unknown files.\n"
      "Examples:\n  npeff inspect pefs.h5\n  npeff inspect pefs.h5 --json | jq .datasets");
  sub->add_option("file", options->path, "npeff HDF5 file")->required();
  sub->add_flag("--json", options->json, "Print a JSON summary instead of text");
  sub->callback([options, &runner] { runner = [options] { return run_inspect(*options); }; });
}

}  // namespace npeff::cli
