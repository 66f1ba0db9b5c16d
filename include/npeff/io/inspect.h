// Summary of any npeff file, for `npeff inspect`.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace npeff::io {

/// Opens `path`, validates it as an npeff file (schema attribute present, schema known, version
/// supported, every dataset readable in its metadata) and returns a JSON summary:
/// {"path", "schema", "schema_version", "npeff_version", "created_utc", "command_line",
///  "provenance", "attributes": {...}, "datasets": [{"path", "dtype", "shape", "chunks",
///  "attributes"}...], "groups": [...]}.
/// Throws npeff::Error for a missing, non-HDF5, truncated or corrupt file, for a file without
/// npeff schema attributes, and for an unknown schema or unsupported version.
nlohmann::json inspect_file(const std::string& path);

/// Human-readable rendering of inspect_file's JSON.
std::string format_inspection(const nlohmann::json& summary);

}  // namespace npeff::io
