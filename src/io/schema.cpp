// Schema names, versions and provenance shared by every npeff file (docs/formats.md).
#include "npeff/io/schema.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "npeff/core/error.h"
#include "npeff/core/version.h"

namespace npeff::io {
namespace {

std::string& command_line_storage() {
  static std::string command_line;
  return command_line;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

}  // namespace

const std::vector<SchemaInfo>& known_schemas() {
  static const std::vector<SchemaInfo> schemas = {
      {"npeff.vectors", 1,
       "rows of vectors [rows, n] (input/output of npeff project --transpose, npeff "
       "synth-vectors)"},
      {"npeff.projected", 1, "sparse-random-projected rows [rows, d] (output of npeff project)"},
      {"npeff.pefs", 1,
       "per-example Fisher matrices G_i [examples, rank, d] (compute-pefs, synth-pefs)"},
      {"npeff.pefs_part", 2,
       "one crash-safe part of a running compute-pefs (OUT.partial.d/part-N.h5)"},
      {"npeff.decomposition", 1,
       "NPEFF components H [C, d] and coefficients W [examples, C] (decompose)"},
      {"npeff.decomposition_checkpoint", 2,
       "resumable state of a running decompose (OUT.partial.d/checkpoint.h5)"},
      {"npeff.coefficients", 1, "coefficients fitted to fixed components (fit-coeffs)"},
      {"npeff.recovered", 1,
       "sparse parameter-space directions of components, recovered by FPC (recover)"},
      {"npeff.perturbation", 1, "KL and PEF-norm ratios of component perturbations (perturb)"},
      {"npeff.perturbation_part", 2,
       "one component's result of a running perturb (OUT.partial.d/component-K.h5)"},
      {"npeff.recovered_part", 1,
       "one component's result of a running recover (OUT.partial.d/component-K.h5)"},
      {"npeff.sae_checkpoint", 1,
       "resumable state of a running sae: SAE, Adam moments, step (OUT.partial.d/checkpoint.h5)"},
      {"npeff.kmeans_restart", 1,
       "one finished k-means++ restart of a running cluster (OUT.partial.d/restart-R.h5)"},
      {"npeff.predictions", 2,
       "zero-shot predictions of a task: p over labels per example (predict)"},
  };
  return schemas;
}

void set_command_line(const std::string& command_line) {
  command_line_storage() = command_line;
}

const std::string& command_line() {
  return command_line_storage();
}

void write_header(File& file, const SchemaId& schema, const nlohmann::json& provenance) {
  NPEFF_ASSERT(provenance.is_object(), "provenance must be a JSON object, got ",
               provenance.type_name());
  NPEFF_ASSERT(!schema.name.empty() && schema.version > 0, "invalid schema id");
  Group& root = file.root();
  root.set_attr("npeff_schema", schema.name);
  root.set_attr("npeff_schema_version", schema.version);
  root.set_attr("npeff_version", npeff::version());
  root.set_attr("created_utc", utc_now());
  root.set_attr("command_line", command_line());
  root.set_attr("provenance",
                provenance.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

SchemaId read_schema(const File& file) {
  const Group& root = file.root();
  NPEFF_CHECK(root.has_attr("npeff_schema"), file.path(),
              " is not an npeff file: no npeff_schema attribute");
  SchemaId id;
  id.name = root.attr_string("npeff_schema");
  NPEFF_CHECK(root.has_attr("npeff_schema_version"), file.path(),
              ": npeff_schema attribute without npeff_schema_version (corrupt npeff file?)");
  id.version = root.attr_int("npeff_schema_version");
  return id;
}

void expect_schema(const File& file, const std::string& name, std::int64_t version) {
  const SchemaId found = read_schema(file);
  NPEFF_CHECK(found.name == name, file.path(), ": expected an '", name, "' file, found '",
              found.name, "'");
  NPEFF_CHECK(found.version == version, file.path(), ": schema '", found.name, "' version ",
              found.version, " is not supported by this npeff (", npeff::version(),
              "), which reads version ", version);
}

std::int64_t expect_schema_versions(const File& file, const std::string& name, std::int64_t oldest,
                                    std::int64_t newest) {
  if (oldest == newest) {
    expect_schema(file, name, newest);
    return newest;
  }
  const SchemaId found = read_schema(file);
  NPEFF_CHECK(found.name == name, file.path(), ": expected an '", name, "' file, found '",
              found.name, "'");
  NPEFF_CHECK(found.version >= oldest && found.version <= newest, file.path(), ": schema '",
              found.name, "' version ", found.version, " is not supported by this npeff (",
              npeff::version(), "), which reads versions ", oldest, " to ", newest);
  return found.version;
}

nlohmann::json read_provenance(const File& file) {
  const Group& root = file.root();
  if (!root.has_attr("provenance")) return nlohmann::json::object();
  const std::string text = root.attr_string("provenance");
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  NPEFF_CHECK(!parsed.is_discarded() && parsed.is_object(), file.path(),
              ": the provenance attribute is not a JSON object: ",
              text.size() > 200 ? text.substr(0, 200) + "..." : text);
  return parsed;
}

}  // namespace npeff::io
