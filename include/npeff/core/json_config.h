// `--config FILE.json`: any command-line option may come from a JSON file; flags on the command
// line win. Keys are long option names without dashes; an object value is a section for the
// subcommand of that name; arrays give repeated values. Example:
//   {"threads": 2, "project": {"dim": 4096, "seed": 7}}
// A top-level key that is not a global option applies to the subcommand being run.
#pragma once

#include <string>
#include <vector>

namespace npeff {

struct ConfigEntry {
  std::vector<std::string> parents;  ///< subcommand path, empty for global options
  std::string name;                  ///< option name without dashes
  std::vector<std::string> values;   ///< textual values (booleans as "true"/"false")
};

/// Parses JSON config text. Throws npeff::Error naming `source` on malformed JSON or values
/// that cannot be options (null, nested arrays).
std::vector<ConfigEntry> parse_json_config(const std::string& text, const std::string& source);

}  // namespace npeff
