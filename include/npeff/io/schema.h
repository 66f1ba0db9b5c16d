// Schema names, versions and provenance shared by every file npeff writes (docs/formats.md).
//
// Every npeff file's root group carries:
//   npeff_schema          string  e.g. "npeff.projected"
//   npeff_schema_version  int64   bumped on any incompatible layout change
//   npeff_version         string  version of the npeff that wrote the file
//   created_utc           string  ISO-8601 time of writing
//   command_line          string  the full command line that produced the file
//   provenance            string  JSON object: seed, model, task, hyperparameters, inputs...
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "npeff/io/hdf5.h"

namespace npeff::io {

/// Schema name and version.
struct SchemaId {
  std::string name;
  std::int64_t version = 0;
};

/// Known schemas: (name, current version, one-line description). inspect uses this.
struct SchemaInfo {
  const char* name;
  std::int64_t version;
  const char* description;
};
const std::vector<SchemaInfo>& known_schemas();

/// The command line of this process (set once by main; "" in tests unless set).
void set_command_line(const std::string& command_line);
const std::string& command_line();

/// Writes the standard root attributes listed above. `provenance` must be a JSON object.
void write_header(File& file, const SchemaId& schema, const nlohmann::json& provenance);

/// Reads the schema attributes; throws npeff::Error ("<file> is not an npeff file: no
/// npeff_schema attribute") when absent.
SchemaId read_schema(const File& file);
/// Checks name and version; the message says what was found and what was expected.
void expect_schema(const File& file, const std::string& name, std::int64_t version);
/// For readers that still read older layouts: accepts versions [oldest, newest] of `name` and
/// returns the version found (the message names the versions this npeff reads otherwise).
std::int64_t expect_schema_versions(const File& file, const std::string& name, std::int64_t oldest,
                                    std::int64_t newest);
/// Parses the provenance JSON attribute (an empty object when absent).
nlohmann::json read_provenance(const File& file);

}  // namespace npeff::io
