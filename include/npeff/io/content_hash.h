// Content fingerprints of input files, cached by file identity (docs/formats.md, "Provenance").
#pragma once

#include <string>

namespace npeff::io {

/// Content fingerprint of a file or folder: "fnv1a64:<16 hex digits>" over the file (a folder:
/// its regular files, not recursively, sorted by name, each with its name and size). Not
/// cryptographic; it tells a changed input from the one a result was made with. Recorded as a
/// checkpoint's provenance (`model_hash`) and, through file_fingerprint (io/resume.h), in every
/// resume settings fingerprint.
///
/// Computed once per file version and cached (content_hash_cache_dir()) under the absolute path
/// plus each file's size, mtime, ctime and inode: reading 1 GB costs ~1 s, and every shard of
/// every SLURM array task starts with it. Any write to a file changes its ctime, which no user
/// call can set back; files changed in the last 2 s are not cached (ctime moves once per timer
/// tick on older kernels), so a cached value is never that of other content. Not st_dev, which
/// differs between nodes on NFS and Lustre.
///
/// Throws npeff::Error when `path` cannot be read. A cache that cannot be read or written is
/// skipped (debug log).
std::string content_hash(const std::string& path);

/// Where content_hash caches: $NPEFF_CACHE_DIR, else $XDG_CACHE_HOME/npeff, else
/// $HOME/.cache/npeff, + "/content-hash"; "" (no caching) when NPEFF_CACHE_DIR is "off" or no
/// home is known.
std::string content_hash_cache_dir();

}  // namespace npeff::io
