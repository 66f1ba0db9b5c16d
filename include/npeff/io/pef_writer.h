// Streaming, crash-safe, resumable writer of npeff.pefs files for compute-pefs
// (docs/formats.md).
//
// Rows are buffered and written every `flush_examples` examples as a complete part file, a
// piece OUT.partial.d/part-NNNNNN.h5 of the job's io::ResumeDir (schema npeff.pefs_part: the
// per-example datasets of npeff.pefs plus `first_example`), itself written at a temporary name
// and renamed. A process killed at any point (kill -9 included) therefore leaves only whole
// parts. A writer for the same OUT and settings continues after the last whole part; other
// settings are refused (io::ResumeDir, naming both fingerprints); finish() moves the folder to
// OUT.parts/ and writes OUT (atomically): its /pefs is a virtual dataset over the parts' /pefs,
// so each PEF is written once; the small per-example datasets are copied into OUT. HDF5 itself is
// not crash-safe: rewriting a file in place and being killed can leave its chunk index pointing at
// reused space, hence whole files per part. Batches must be the same in both runs for the result to
// be identical bit for bit (compute-pefs fixes them relative to the data, not to the resume point).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "npeff/io/resume.h"
#include "npeff/model/per_example_grad.h"
#include "npeff/pef/compute.h"
#include "npeff/projection/projection_record.h"

namespace npeff::io {

struct PefWriterSpec {
  std::string path;
  nlohmann::json settings;      ///< everything that determines the content (io::ResumeDir)
  nlohmann::json provenance;    ///< root attribute `provenance` of the final file
  int64_t rank = 0, dim = 0;    ///< PEF shape (for an empty shard's empty /pefs)
  bool float16 = false;         ///< store /pefs as float16
  int64_t flush_examples = 64;  ///< examples per part file (rounded up to whole batches)
};

class PefWriter {
 public:
  explicit PefWriter(PefWriterSpec spec);
  int64_t done() const { return done_; }  ///< examples in whole parts (the resume point)
  bool resumed() const { return done_ > 0; }
  // Buffers a batch; writes a part once flush_examples are buffered.
  void append(const pef::PefBatch& batch, const std::vector<int64_t>& example_ids,
              const std::vector<int64_t>& labels, const std::vector<std::string>& prompts);
  // Writes the last part, moves the folder to OUT.parts/ and writes OUT: the per-file tables and
  // a virtual /pefs over the parts (see above).
  void finish(const std::vector<std::string>& label_names,
              const model::ParameterSelection& selection,
              const projection::ProjectionRecord& projection);
  const std::string& part_dir() const { return resume_.dir(); }

 private:
  void write_part();
  static std::string part_name(int64_t index);

  PefWriterSpec spec_;
  io::ResumeDir resume_;
  int64_t done_ = 0, parts_ = 0;
  std::vector<pef::PefBatch> pending_;
  std::vector<int64_t> pending_ids_, pending_labels_;
  std::vector<std::string> pending_prompts_;
};

// The folder that holds OUT's part files once compute-pefs has finished: OUT + ".parts".
std::string parts_dir(const std::string& out);

// Concatenates compute-pefs shard files (in the given order) into one npeff.pefs file at `out`
// (written atomically): per-example datasets are appended, prompts joined; the files must agree
// on rank, d, projection, selected parameters and the optional datasets they hold. /pefs is
// written once: a virtual dataset over the part files the inputs' /pefs read from (or over the
// inputs themselves when theirs are regular datasets), named relative to `out`'s folder; `copy`
// writes a self-contained file instead (the PEFs copied, converted to the first file's dtype).
// Returns the number of examples.
int64_t merge_pef_files(const std::vector<std::string>& inputs, const std::string& out,
                        const nlohmann::json& provenance, bool copy = false);

}  // namespace npeff::io
