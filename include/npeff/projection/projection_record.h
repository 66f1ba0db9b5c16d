// The `/projection` group that every file holding projected data carries (docs/formats.md):
// which projection produced the data, so that readers can refuse to combine data from different
// projections and `--transpose`/recovery can rebuild the exact same matrix.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "npeff/io/hdf5.h"
#include "npeff/projection/projection.h"

namespace npeff::projection {

struct ProjectionRecord {
  std::uint64_t seed = 0;
  std::int64_t dim = 0;
  std::int64_t region_size = 0;
  std::string kind;
  std::string generator;
  std::int64_t input_dim = 0;     ///< n: length of the unprojected vectors
  std::int64_t input_offset = 0;  ///< global index of the first unprojected entry

  /// The projection it describes; throws npeff::Error for an unknown generator.
  Projection projection() const;
  /// True when both describe the same matrix applied to the same index range.
  bool same_as(const ProjectionRecord& other) const;
  std::string describe() const;
  nlohmann::json to_json() const;
};

ProjectionRecord make_record(const Projection& p, std::int64_t input_dim);

/// Writes `record` as the attributes of group `/projection` of `file`.
void write_projection_group(io::File& file, const ProjectionRecord& record);
/// Reads `/projection` of `file`; `present` is false when the group is absent.
bool read_projection_group(const io::File& file, ProjectionRecord& record);

}  // namespace npeff::projection
