#include "npeff/core/json_config.h"

#include <nlohmann/json.hpp>

#include <set>

#include "npeff/core/error.h"
#include "npeff/core/paths.h"

namespace npeff {
namespace {

std::string scalar_text(const nlohmann::json& v, const std::string& key,
                        const std::string& source) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  NPEFF_FAIL(source, ": config key '", key, "' has a value of type ", v.type_name(),
             "; expected a string, number, boolean or an array of them");
}

// Long names (without dashes) of the options whose values are files or folders, in every
// subcommand: docs/cli-vocabulary.md, plus deprecated spellings and positional arguments.
const std::set<std::string> kPathOptions = {
    "pefs", "decomposition", "recovered", "out",  "model",  "tokenizer", "task", "task-dir",
    "data", "input",         "inputs",    "file", "coarse", "fine",      "plot", "decompositions"};

std::string resolve_value(const std::string& value, ConfigPathKind kind,
                          const std::string& base_dir) {
  if (kind == ConfigPathKind::kNamedPath) {
    const size_t eq = value.find('=');
    if (eq == std::string::npos) return value;  // refused later with a message
    return value.substr(0, eq + 1) + resolve_path(value.substr(eq + 1), base_dir);
  }
  return resolve_path(value, base_dir);
}

void flatten(const nlohmann::json& obj, std::vector<std::string>& parents,
             std::vector<ConfigEntry>& out, const std::string& source,
             const std::string& base_dir) {
  for (const auto& [key, value] : obj.items()) {
    if (value.is_object()) {
      parents.push_back(key);
      flatten(value, parents, out, source, base_dir);
      parents.pop_back();
      continue;
    }
    ConfigEntry entry{parents, key, {}};
    if (value.is_array()) {
      for (const auto& item : value) entry.values.push_back(scalar_text(item, key, source));
    } else {
      entry.values.push_back(scalar_text(value, key, source));
    }
    const ConfigPathKind kind = config_path_kind(parents, key);
    if (!base_dir.empty() && kind != ConfigPathKind::kNone) {
      for (std::string& v : entry.values) v = resolve_value(v, kind, base_dir);
    }
    out.push_back(std::move(entry));
  }
}

}  // namespace

ConfigPathKind config_path_kind(const std::vector<std::string>& parents, const std::string& name) {
  if (!kPathOptions.count(name)) return ConfigPathKind::kNone;
  if (name == "decompositions" && !parents.empty() && parents.back() == "tunings")
    return ConfigPathKind::kNamedPath;
  return ConfigPathKind::kPath;
}

std::vector<ConfigEntry> parse_json_config(const std::string& text, const std::string& source,
                                           const std::string& base_dir) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    NPEFF_FAIL(source, " is not valid JSON: ", e.what());
  }
  NPEFF_CHECK(root.is_object(), source, ": a config file must hold a JSON object, found ",
              root.type_name());
  std::vector<ConfigEntry> out;
  std::vector<std::string> parents;
  flatten(root, parents, out, source, base_dir);
  return out;
}

}  // namespace npeff
