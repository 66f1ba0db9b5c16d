// `--config FILE.json`: any command-line option may come from a JSON file; flags on the command
// line win. Keys are long option names without dashes; an object value is a section for the
// subcommand of that name; arrays give repeated values. Example:
//   {"threads": 2, "project": {"dim": 4096, "seed": 7}}
// A top-level key that is not a global option applies to the subcommand being run. Relative
// paths in the file resolve against the file's folder (docs/cli-vocabulary.md, --config).
#pragma once

#include <string>
#include <vector>

namespace npeff {

struct ConfigEntry {
  std::vector<std::string> parents;  ///< subcommand path, empty for global options
  std::string name;                  ///< option name without dashes
  std::vector<std::string> values;   ///< textual values (booleans as "true"/"false")
};

/// How an option's value names a path, by its long name without dashes and, for nested
/// subcommands, the parents (`compare tunings` takes NAME=PATH). The one registry of path options:
/// add an option here when it takes a file or folder. kNone for every other option.
enum class ConfigPathKind { kNone, kPath, kNamedPath };
ConfigPathKind config_path_kind(const std::vector<std::string>& parents, const std::string& name);

/// Parses JSON config text. Throws npeff::Error naming `source` on malformed JSON or values
/// that cannot be options (null, nested arrays). With a `base_dir` (the config file's folder),
/// relative values of path options (config_path_kind) are resolved against it
/// (npeff/core/paths.h: absolute paths unchanged, '~' not expanded).
std::vector<ConfigEntry> parse_json_config(const std::string& text, const std::string& source,
                                           const std::string& base_dir = "");

}  // namespace npeff
