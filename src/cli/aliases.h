// Deprecated flag spellings (docs/cli-vocabulary.md): kept for one release, rewritten to the new
// spelling before CLI11 parses, with a warning on stderr. Keeping them out of CLI11 keeps them out
// of --help, so the help shows one vocabulary.
#pragma once

#include <string>
#include <vector>

namespace npeff::cli {

/// argv with every deprecated spelling of the selected subcommand replaced by its new spelling
/// (also in `--old=value` form; old dtype values float32/float16 become fp32/fp16). Prints one
/// warning per replaced spelling to stderr.
std::vector<std::string> rewrite_deprecated_flags(int argc, char** argv);

/// The new key for a deprecated key of `subcommand` in a --config file ("" when not deprecated),
/// printing the same warning. Keys are long names without dashes ("dim").
std::string rewrite_deprecated_config_key(const std::string& subcommand, const std::string& key);

}  // namespace npeff::cli
