// The one resume mechanism of npeff's long-running stages (docs/formats.md, "Resuming").
//
// A job writing OUT keeps its work in the folder OUT.partial.d/:
//   settings.json  the settings fingerprint: canonical JSON (sorted keys, compact) of everything
//                  that determines the result (inputs with their path, size and content
//                  hash, options, process count), written before the first piece;
//   PIECE.h5       whole pieces (a part of the rows, one component, a checkpoint), each written
//                  at PIECE.h5.partial and renamed into place (io::File::create + commit), so
//                  after kill -9 a piece exists whole or not at all. Writing a piece again
//                  replaces it atomically (checkpoints).
// A rerun of the same command opens the folder, finds the pieces and continues; a run with other
// settings is refused (npeff::Error naming both fingerprints). finish() removes the folder once
// OUT has been committed.
//
// Usage:
//   io::ResumeDir resume(out, settings);          // refuses a folder made with other settings
//   if (resume.has("component-3.h5")) read(resume.open("component-3.h5"));
//   io::File f = resume.create("component-3.h5"); ...; f.commit();
//   ... write and commit OUT ...; resume.finish();
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "npeff/io/hdf5.h"

namespace npeff::io {

/// What identifies an input in a resume settings fingerprint: {"path" (absolute), "size",
/// "content" (io::content_hash: read once per file version, then cached)}; a folder (an HF
/// model directory): its regular files, not recursively. Not the mtime: a file restaged at the
/// same path with the same bytes is the same input. A PEF file with a virtual /pefs is hashed as
/// OUT itself (part names and settings ids; readers check each part's id). Throws npeff::Error when
/// `path` does not exist or cannot be read.
nlohmann::json file_fingerprint(const std::string& path);

/// The canonical text of `settings` (nlohmann's compact dump: object keys sorted).
std::string canonical_json(const nlohmann::json& settings);
/// A short name for a settings fingerprint: FNV-1a 64 of canonical_json, 16 hex digits.
std::string fingerprint_id(const nlohmann::json& settings);

class ResumeDir {
 public:
  /// The working folder of the job writing `out`: out + ".partial.d". Throws npeff::Error when
  /// the folder holds a settings.json other than `settings` (naming both fingerprints, the keys
  /// that differ, and what to do), or holds pieces but no settings.json (not made by this
  /// mechanism). `writer` false (MPI ranks other than 0): this process only reads pieces;
  /// create() and finish() are then errors / no-ops.
  ResumeDir(const std::string& out, nlohmann::json settings, bool writer = true);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& settings() const { return settings_; }
  /// True when the folder was left by an earlier run with the same settings.
  bool resumed() const { return resumed_; }

  /// dir()/name.
  std::string path(const std::string& name) const;
  /// Whether the whole piece `name` exists.
  bool has(const std::string& name) const;
  /// Opens the piece `name` for reading (npeff::Error when it cannot be read).
  File open(const std::string& name) const;
  /// Starts writing the piece `name` (creating the folder and settings.json first); the caller
  /// writes it and calls commit(), which renames it into place (replacing an older version).
  File create(const std::string& name);
  /// The whole pieces present, sorted by name (settings.json and temporary files excluded).
  std::vector<std::string> pieces() const;
  /// Removes the folder. Call after OUT has been committed. A no-op for a non-writer.
  void finish();

 private:
  void write_settings();

  std::string dir_;
  nlohmann::json settings_;
  bool writer_ = true;
  bool resumed_ = false;
  bool settings_written_ = false;
};

}  // namespace npeff::io
