// Outputs that are not HDF5 files — text files (markdown tables, JSON, SVG) and whole folders
// (tune-report, synth-task, model directories) — written with the same rule as HDF5 outputs
// (docs/formats.md, "Atomic writes"): built under a temporary name, renamed into place.
#pragma once

#include <string>

namespace npeff::io {

/// Writes `bytes` to `path` (plain write; throws npeff::Error naming the path on failure).
void write_file(const std::string& path, const std::string& bytes);

/// Writes `bytes` to `path` atomically: PATH.partial, then rename.
void write_file_atomically(const std::string& path, const std::string& bytes);

/// A folder output: begin_folder(OUT) creates a fresh, empty OUT.partial.d and returns its
/// path; commit_folder(TMP, OUT) replaces OUT (when it exists) by TMP.
std::string begin_folder(const std::string& out);
void commit_folder(const std::string& tmp, const std::string& out);

}  // namespace npeff::io
