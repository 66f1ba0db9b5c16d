#include "npeff/core/json_config.h"

#include <nlohmann/json.hpp>

#include "npeff/core/error.h"

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

void flatten(const nlohmann::json& obj, std::vector<std::string>& parents,
             std::vector<ConfigEntry>& out, const std::string& source) {
  for (const auto& [key, value] : obj.items()) {
    if (value.is_object()) {
      parents.push_back(key);
      flatten(value, parents, out, source);
      parents.pop_back();
      continue;
    }
    ConfigEntry entry{parents, key, {}};
    if (value.is_array()) {
      for (const auto& item : value) entry.values.push_back(scalar_text(item, key, source));
    } else {
      entry.values.push_back(scalar_text(value, key, source));
    }
    out.push_back(std::move(entry));
  }
}

}  // namespace

std::vector<ConfigEntry> parse_json_config(const std::string& text, const std::string& source) {
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
  flatten(root, parents, out, source);
  return out;
}

}  // namespace npeff
