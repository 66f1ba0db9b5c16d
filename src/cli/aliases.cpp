#include "cli/aliases.h"

#include <cstring>
#include <iostream>
#include <set>

namespace npeff::cli {
namespace {

struct Alias {
  const char* subcommand;  // "compare" covers its nested subcommands
  const char* old_name;    // with dashes
  const char* new_name;
};

// The table of docs/cli-vocabulary.md ("Deprecated spellings"); keep both in step.
constexpr Alias kAliases[] = {
    {"fit-coeffs", "-d", "-D"},
    {"project", "--dim", "--proj-dim"},
    {"project", "--seed", "--proj-seed"},
    {"project", "--region-size", "--proj-region-size"},
    {"project", "--kind", "--proj-kind"},
    {"synth-vectors", "--dim", "--input-dim"},
    {"synth-pefs", "--dim", "--proj-dim"},
    {"generate", "-p", "--prompt"},
    {"compute-pefs", "--top-k", "--top-classes"},
    {"compute-pefs", "--store-dtype", "--storage-dtype"},
    {"perturb", "--top-k", "--top-examples"},
    {"tune-report", "--top-k", "--top-examples"},
    {"score-factors", "--top-k", "--top-examples"},
    {"compare", "--top-k", "--top-examples"},
    {"recover", "--components", "--component-ids"},
    {"merge-pefs", "--inputs", "--pefs"},
    {"merge-pefs", "-i", "-p"},
    {"cluster", "-k", "--clusters"},
};

// Global options that take a value (their value is not the subcommand name).
const std::set<std::string> kGlobalsWithValue = {"--threads", "--log-level", "--device",
                                                 "--config"};

void warn(const std::string& old_name, const std::string& new_name, const std::string& sub) {
  static std::set<std::string> warned;
  if (!warned.insert(sub + old_name).second) return;
  std::cerr << "npeff: warning: '" << old_name << "' of " << sub << " is deprecated; use '"
            << new_name << "' (the old spelling goes in the next release)\n";
}

const Alias* find(const std::string& sub, const std::string& name) {
  for (const Alias& a : kAliases)
    if (sub == a.subcommand && name == a.old_name) return &a;
  return nullptr;
}

std::string new_dtype_value(const std::string& value) {
  if (value == "float32") return "fp32";
  if (value == "float16") return "fp16";
  return value;
}

}  // namespace

std::vector<std::string> rewrite_deprecated_flags(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  std::string sub;
  std::size_t i = 1;
  for (; i < args.size(); ++i) {  // find the subcommand: the first word that is no option value
    const std::string& a = args[i];
    if (a == "--") return args;
    if (kGlobalsWithValue.count(a)) {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] != '-') {
      sub = a;
      break;
    }
  }
  if (sub.empty()) return args;
  for (++i; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-') continue;
    const std::size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    const Alias* alias = find(sub, name);
    if (alias == nullptr) continue;
    warn(name, alias->new_name, sub);
    const bool dtype = std::strcmp(alias->old_name, "--store-dtype") == 0;
    if (eq != std::string::npos) {
      const std::string value = a.substr(eq + 1);
      a = std::string(alias->new_name) + "=" + (dtype ? new_dtype_value(value) : value);
    } else {
      a = alias->new_name;
      if (dtype && i + 1 < args.size()) args[i + 1] = new_dtype_value(args[i + 1]);
    }
  }
  return args;
}

std::string rewrite_deprecated_config_key(const std::string& subcommand, const std::string& key) {
  const Alias* alias = find(subcommand, "--" + key);
  if (alias == nullptr || std::strncmp(alias->new_name, "--", 2) != 0) return "";
  warn("--" + key, alias->new_name, subcommand);
  return alias->new_name + 2;
}

}  // namespace npeff::cli
