#include "npeff/projection/projection_record.h"

#include <nlohmann/json.hpp>

#include "npeff/core/error.h"

namespace npeff::projection {

Projection ProjectionRecord::projection() const {
  NPEFF_CHECK(generator == Projection::generator(), "data was projected with generator '",
              generator, "', this npeff implements '", Projection::generator(), "'");
  return Projection({seed, dim, region_size, parse_kind(kind)});
}

bool ProjectionRecord::same_as(const ProjectionRecord& o) const {
  return seed == o.seed && dim == o.dim && region_size == o.region_size && kind == o.kind &&
         generator == o.generator && input_dim == o.input_dim && input_offset == o.input_offset;
}

std::string ProjectionRecord::describe() const {
  return detail::concat("seed ", seed, ", d ", dim, ", s ", region_size, ", ", kind, ", n ",
                        input_dim, ", generator ", generator);
}

nlohmann::json ProjectionRecord::to_json() const {
  return {{"seed", seed},
          {"dim", dim},
          {"region_size", region_size},
          {"kind", kind},
          {"generator", generator},
          {"input_dim", input_dim},
          {"input_offset", input_offset}};
}

ProjectionRecord make_record(const Projection& p, std::int64_t input_dim) {
  return {p.seed(),  p.dim(), p.region_size(), to_string(p.kind()), Projection::generator(),
          input_dim, 0};
}

void write_projection_group(io::File& file, const ProjectionRecord& r) {
  io::Group g = file.root().create_group("projection");
  g.set_attr("seed", r.seed);
  g.set_attr("dim", r.dim);
  g.set_attr("region_size", r.region_size);
  g.set_attr("kind", r.kind);
  g.set_attr("scale", static_cast<double>(
                          Projection({r.seed, r.dim, r.region_size, parse_kind(r.kind)}).scale()));
  g.set_attr("input_dim", r.input_dim);
  g.set_attr("input_offset", r.input_offset);
  g.set_attr("generator", r.generator);
}

bool read_projection_group(const io::File& file, ProjectionRecord& r) {
  if (!file.root().has("projection")) return false;
  const io::Group g = file.root().group("projection");
  r.seed = g.attr_uint("seed");
  r.dim = g.attr_int("dim");
  r.region_size = g.attr_int("region_size");
  r.kind = g.attr_string("kind");
  r.generator = g.attr_string("generator");
  r.input_dim = g.attr_int("input_dim");
  r.input_offset = g.has_attr("input_offset") ? g.attr_int("input_offset") : 0;
  return true;
}

}  // namespace npeff::projection
