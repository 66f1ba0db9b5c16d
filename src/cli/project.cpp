// npeff project: applies the sparse random projection (or its transpose) to rows of vectors
// stored in an HDF5 file, streaming column blocks so memory stays bounded for any n.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/subcommands.h"
#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/progress.h"
#include "npeff/core/runtime.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"
#include "npeff/projection/projection.h"
#include "npeff/projection/projection_record.h"

namespace npeff::cli {
namespace {

struct ProjectOptions {
  std::string input;       ///< input HDF5 file (required)
  std::string dataset;     ///< dataset in it; default "vectors" ("projected" with --transpose)
  std::string out;         ///< output file (required); written atomically
  std::int64_t dim = 0;    ///< d; required unless --transpose reads it from the input
  std::uint64_t seed = 0;  ///< projection seed
  std::int64_t region_size = 0;  ///< s; 0 = automatic (max(1, d/32))
  std::string kind = "sparse";   ///< sparse | dense
  bool transpose = false;        ///< apply A^T to [rows, d] and write [rows, n]
  std::int64_t input_dim = 0;    ///< n for --transpose; default: the input's /projection/input_dim
  std::int64_t block_columns = 1 << 20;  ///< columns read/written per block
  bool json = false;                     ///< JSON summary on stdout
  // Whether projection flags were given explicitly (flags or config), for --transpose checks.
  CLI::Option* dim_opt = nullptr;
  CLI::Option* seed_opt = nullptr;
  CLI::Option* region_opt = nullptr;
  CLI::Option* kind_opt = nullptr;
};

/// Reads a [rows, cols] (or 1-d [cols]) float dataset's shape.
std::pair<std::int64_t, std::int64_t> matrix_shape(const io::Dataset& ds) {
  const auto shape = ds.shape();
  const io::DType t = ds.dtype();
  NPEFF_CHECK(t == io::DType::kFloat32 || t == io::DType::kFloat64 || t == io::DType::kFloat16,
              ds.file_name(), ":", ds.path(), " has dtype ", io::to_string(t),
              "; expected float32, float64 or float16");
  NPEFF_CHECK(shape.size() == 1 || shape.size() == 2, ds.file_name(), ":", ds.path(), " has ",
              shape.size(), " dimensions; expected [rows, columns] or [columns]");
  if (shape.size() == 1) return {1, shape[0]};
  return {shape[0], shape[1]};
}

std::vector<std::int64_t> slab_offset(std::size_t rank, std::int64_t col) {
  return rank == 1 ? std::vector<std::int64_t>{col} : std::vector<std::int64_t>{0, col};
}
std::vector<std::int64_t> slab_count(std::size_t rank, std::int64_t rows, std::int64_t cols) {
  return rank == 1 ? std::vector<std::int64_t>{cols} : std::vector<std::int64_t>{rows, cols};
}

/// Opens the input's dataset `name`, with a message naming the flag when it is absent.
io::Dataset open_dataset(const io::File& in, const std::string& path, const std::string& name) {
  NPEFF_CHECK(in.root().has(name), path, " has no dataset '", name,
              "' (choose one with --dataset)");
  return in.root().dataset(name);
}

nlohmann::json provenance(const char* command, const ProjectOptions& o, const std::string& ds_name,
                          std::int64_t rows, std::int64_t n, const GlobalOptions& g,
                          const projection::Projection& p) {
  return {{"command", command},
          {"input", o.input},
          {"dataset", ds_name},
          {"rows", rows},
          {"input_dim", n},
          {"device", g.device},
          {"projection", projection::make_record(p, n).to_json()}};
}

int finish(const ProjectOptions& o, const nlohmann::json& summary) {
  return report_success(o.out, summary, o.json);
}

int run_forward(const ProjectOptions& o, const GlobalOptions& g) {
  const at::Device dev = select_device(g.device);
  NPEFF_CHECK(o.dim > 0, "--proj-dim is required (the projected dimension d > 0)");
  const projection::Projection p({o.seed, o.dim, o.region_size, projection::parse_kind(o.kind)});
  const io::File in = io::File::open(o.input);
  const std::string ds_name = o.dataset.empty() ? "vectors" : o.dataset;
  const io::Dataset ds = open_dataset(in, o.input, ds_name);
  const auto [rows, n] = matrix_shape(ds);
  const std::size_t rank = ds.shape().size();

  at::Tensor out = at::zeros({rows, p.dim()}, at::TensorOptions().dtype(at::kFloat).device(dev));
  Progress progress("project", n, "columns");
  const std::int64_t block = std::max<std::int64_t>(1, o.block_columns);
  at::Tensor host = at::empty({rows, std::min(block, n)}, at::kFloat);
  for (std::int64_t c0 = 0; c0 < n; c0 += block) {
    const std::int64_t cols = std::min(block, n - c0);
    at::Tensor x = host.narrow(1, 0, cols).contiguous();
    ds.read_slab(slab_offset(rank, c0), slab_count(rank, rows, cols), x.data_ptr<float>());
    projection::project_accumulate(p, x.to(dev), c0, out);
    progress.advance(cols);
  }
  progress.finish();
  at::Tensor result = out.cpu().contiguous();

  io::File file = io::File::create(o.out);
  io::write_header(file, {"npeff.projected", 1}, provenance("project", o, ds_name, rows, n, g, p));
  io::Dataset dst = file.root().create_dataset("projected", io::DType::kFloat32, {rows, p.dim()});
  dst.write(result.data_ptr<float>());
  projection::write_projection_group(file, projection::make_record(p, n));
  file.commit();
  const double secs = progress.elapsed_seconds();
  return finish(o, {{"command", "project"},
                    {"output", o.out},
                    {"rows", rows},
                    {"input_dim", n},
                    {"projection", projection::make_record(p, n).to_json()},
                    {"seconds", secs},
                    {"input_elements_per_second", secs > 0 ? rows * n / secs : 0.0}});
}

int run_transpose(const ProjectOptions& o, const GlobalOptions& g) {
  const at::Device dev = select_device(g.device);
  const io::File in = io::File::open(o.input);
  const std::string ds_name = o.dataset.empty() ? "projected" : o.dataset;
  const io::Dataset ds = open_dataset(in, o.input, ds_name);

  // The projection: from the input file's /projection group when present; explicit flags must
  // agree with it (a different projection would silently give a meaningless result).
  projection::ProjectionOptions popt{o.seed, o.dim, o.region_size, projection::parse_kind(o.kind)};
  std::int64_t n = o.input_dim;
  projection::ProjectionRecord record;
  if (projection::read_projection_group(in, record)) {
    const projection::Projection file_p = record.projection();
    const projection::ProjectionOptions file_opt{file_p.seed(), file_p.dim(), file_p.region_size(),
                                                 file_p.kind()};
    auto agree = [&](CLI::Option* opt, bool same, const char* name) {
      NPEFF_CHECK(opt == nullptr || opt->count() == 0 || same, "--", name,
                  " disagrees with the projection recorded in ", o.input, " (", record.describe(),
                  ")");
    };
    agree(o.dim_opt, o.dim == file_opt.dim, "proj-dim");
    agree(o.seed_opt, o.seed == file_opt.seed, "proj-seed");
    agree(o.region_opt, o.region_size == file_opt.region_size, "proj-region-size");
    agree(o.kind_opt, popt.kind == file_opt.kind, "proj-kind");
    popt = file_opt;
    if (n == 0) n = record.input_dim;
  } else {
    NPEFF_CHECK(o.dim > 0, o.input, " records no projection: give --proj-dim and --proj-seed");
  }
  NPEFF_CHECK(n > 0, "--input-dim is required: the length n of the vectors to reconstruct");
  const projection::Projection p(popt);
  const auto [rows, d] = matrix_shape(ds);
  NPEFF_CHECK(d == p.dim(), o.input, ":", ds_name, " has ", d,
              " columns but the projection has d = ", p.dim());
  at::Tensor y = at::empty({rows, d}, at::kFloat);
  ds.read_slab(slab_offset(ds.shape().size(), 0), slab_count(ds.shape().size(), rows, d),
               y.data_ptr<float>());
  y = y.to(dev);

  io::File file = io::File::create(o.out);
  io::write_header(file, {"npeff.vectors", 1},
                   provenance("project --transpose", o, ds_name, rows, n, g, p));
  io::Dataset dst = file.root().create_dataset("vectors", io::DType::kFloat32, {rows, n});
  Progress progress("project --transpose", n, "columns");
  const std::int64_t block = std::max<std::int64_t>(1, o.block_columns);
  for (std::int64_t c0 = 0; c0 < n; c0 += block) {
    const std::int64_t cols = std::min(block, n - c0);
    at::Tensor part = projection::project_transpose(p, y, c0, cols).cpu().contiguous();
    dst.write_slab({0, c0}, {rows, cols}, part.data_ptr<float>());
    progress.advance(cols);
  }
  progress.finish();
  projection::write_projection_group(file, projection::make_record(p, n));
  file.commit();
  const double secs = progress.elapsed_seconds();
  return finish(o, {{"command", "project --transpose"},
                    {"output", o.out},
                    {"rows", rows},
                    {"input_dim", n},
                    {"projection", projection::make_record(p, n).to_json()},
                    {"seconds", secs}});
}

}  // namespace

void add_project_command(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto o = std::make_shared<ProjectOptions>();
  CLI::App* sub = app.add_subcommand(
      "project",
      "Apply the sparse random projection A (paper Section 2.2.1, Appendix A) to rows of vectors\n"
      "in an HDF5 file, or its transpose A^T with --transpose. Streams column blocks, so n may\n"
      "be far larger than memory. The projection is a pure function of (seed, index, output).\n"
      "Examples:\n"
      "  npeff project --input x.h5 --proj-dim 16384 --proj-seed 7 --out x.proj.h5\n"
      "  npeff project --input x.proj.h5 --transpose --out x.back.h5   # A^T (A x)\n"
      "  npeff --device cuda project --input g.h5 --dataset grads --proj-dim 4096 --out g.proj.h5");
  sub->add_option("--input,-i", o->input, "Input HDF5 file")->required();
  sub->add_option("--dataset", o->dataset,
                  "Dataset of [rows, n] vectors (default 'vectors'; 'projected' with --transpose)");
  sub->add_option("--out,-o", o->out, "Output file (written atomically)")->required();
  o->dim_opt = sub->add_option("--proj-dim,-d", o->dim, "Projected dimension d");
  o->seed_opt = sub->add_option("--proj-seed", o->seed, "Projection seed")->capture_default_str();
  o->region_opt =
      sub->add_option("--proj-region-size", o->region_size,
                      "Region size s (0 = max(1, d/32): each input lands in ~32 outputs)")
          ->capture_default_str();
  o->kind_opt = sub->add_option("--proj-kind", o->kind, "sparse | dense (dense Rademacher, s = 1)")
                    ->capture_default_str()
                    ->check(CLI::IsMember({"sparse", "dense"}));
  sub->add_flag("--transpose", o->transpose, "Apply A^T: [rows, d] -> [rows, n]");
  sub->add_option("--input-dim", o->input_dim,
                  "n for --transpose (default: the input file's recorded input_dim)");
  sub->add_option("--block-columns", o->block_columns, "Columns per streamed block")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->callback([o, &global, &runner] {
    runner = [o, &global] {
      return o->transpose ? run_transpose(*o, global) : run_forward(*o, global);
    };
  });
}

}  // namespace npeff::cli
