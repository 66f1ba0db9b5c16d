#include "npeff/decomposition/decomposition_file.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "npeff/core/error.h"
#include "npeff/io/schema.h"

namespace npeff::decomposition {
namespace {

void write_matrix(io::Group& g, const std::string& name, const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).contiguous().cpu();
  g.create_dataset(name, io::DType::kFloat32, {c.size(0), c.size(1)}).write(c.data_ptr<float>());
}

at::Tensor read_matrix(const io::Group& g, const std::string& name) {
  const io::Dataset ds = g.dataset(name);
  const auto shape = ds.shape();
  NPEFF_CHECK(shape.size() == 2, ds.file_name(), ":", ds.path(), " has ", shape.size(),
              " dimensions, expected 2");
  at::Tensor t = at::empty({shape[0], shape[1]}, at::kFloat);
  ds.read(t.data_ptr<float>());
  return t;
}

void write_loss(io::Group& root, const LossHistory& loss) {
  io::Group g = root.create_group("loss");
  const auto k = static_cast<std::int64_t>(loss.steps.size());
  g.create_dataset("step", io::DType::kInt64, {k}).write(loss.steps.data());
  g.create_dataset("value", io::DType::kFloat64, {k}).write(loss.values.data());
  g.create_dataset("seconds", io::DType::kFloat64, {k}).write(loss.seconds.data());
}

LossHistory read_loss(const io::Group& root) {
  LossHistory loss;
  const io::Group g = root.group("loss");
  const auto k = g.dataset("step").shape().at(0);
  loss.steps.resize(k);
  loss.values.resize(k);
  loss.seconds.resize(k);
  g.dataset("step").read(loss.steps.data());
  g.dataset("value").read(loss.values.data());
  g.dataset("seconds").read(loss.seconds.data());
  return loss;
}

}  // namespace

void write_factors(io::File& file, const DecompositionData& d) {
  io::Group& root = file.root();
  write_matrix(root, "W", d.w);
  write_matrix(root, "H", d.h);
  const at::Tensor ids = d.example_ids.to(at::kLong).contiguous().cpu();
  root.create_dataset("example_ids", io::DType::kInt64, {ids.size(0)})
      .write(ids.data_ptr<std::int64_t>());
  write_loss(root, d.loss);
  root.set_attr("method", d.method);
  if (d.has_projection) projection::write_projection_group(file, d.projection);
}

void write_decomposition(io::File& file, const DecomposeOptions& o, const DecompositionData& d,
                         double final_loss, double relative_loss) {
  io::Group& root = file.root();
  write_factors(file, d);
  root.set_attr("components", o.components);
  root.set_attr("h_only_steps", o.h_only_steps);
  root.set_attr("h_only_lr", o.h_only_lr);
  root.set_attr("steps", o.steps);
  root.set_attr("lr", o.lr);
  root.set_attr("seed", o.seed);
  root.set_attr("final_loss", final_loss);
  root.set_attr("relative_loss", relative_loss);
}

DecompositionData read_decomposition(const std::string& path, bool with_w) {
  const io::File f = io::File::open(path);
  io::expect_schema(f, "npeff.decomposition", 1);
  DecompositionData d;
  d.h = read_matrix(f.root(), "H");
  const io::Dataset w = f.root().dataset("W");
  w.expect(io::DType::kFloat32, {-1, d.h.size(0)});
  const std::int64_t m = w.shape()[0];
  if (with_w) d.w = read_matrix(f.root(), "W");
  d.example_ids = at::empty({m}, at::kLong);
  f.root().dataset("example_ids").expect(io::DType::kInt64, {m});
  f.root().dataset("example_ids").read(d.example_ids.data_ptr<std::int64_t>());
  d.loss = read_loss(f.root());
  d.has_projection = projection::read_projection_group(f, d.projection);
  if (f.root().has_attr("method")) d.method = f.root().attr_string("method");
  return d;
}

void write_checkpoint(io::File& file, const Checkpoint& c) {
  io::write_header(file, {"npeff.decomposition_checkpoint", 2},
                   nlohmann::json{{"next_step", c.next_step}});
  file.root().set_attr("next_step", c.next_step);
  write_matrix(file.root(), "W", c.w);
  write_matrix(file.root(), "H", c.h);
  write_loss(file.root(), c.loss);
}

Checkpoint read_checkpoint(const io::File& f) {
  io::expect_schema(f, "npeff.decomposition_checkpoint", 2);
  Checkpoint c;
  c.next_step = f.root().attr_int("next_step");
  c.w = read_matrix(f.root(), "W");
  c.h = read_matrix(f.root(), "H");
  NPEFF_CHECK(c.w.size(1) == c.h.size(0), f.path(), ": W has ", c.w.size(1),
              " components but H has ", c.h.size(0));
  c.loss = read_loss(f.root());
  return c;
}

}  // namespace npeff::decomposition
