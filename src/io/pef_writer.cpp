#include "npeff/io/pef_writer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/hdf5_internal.h"
#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"

namespace npeff::io {

namespace fs = std::filesystem;

namespace {
constexpr const char* kPartSchema = "npeff.pefs_part";
constexpr int64_t kPartVersion = 2;  // 2: the settings live in OUT.partial.d/settings.json

// The numeric per-example datasets of a file (every root dataset but the string tables).
std::vector<std::string> row_datasets(const io::File& f) {
  std::vector<std::string> names;
  for (const std::string& c : f.root().children()) {
    if (!f.root().is_group(c) && f.root().dataset(c).dtype() != io::DType::kString)
      names.push_back(c);
  }
  return names;
}

// A part's datasets are written once, whole: chunked to the part's own rows (an extendible
// dataset would allocate ~1 MiB chunks, most of a small part's bytes, and parts are kept as
// OUT's storage).
void create_rows(io::File& f, const std::string& name, io::DType dtype, at::IntArrayRef shape,
                 const at::Tensor& data) {
  io::DatasetOptions opt;
  opt.compression = shape.size() > 1 ? 0 : 4;  // float rows barely compress; deflate costs time
  std::vector<int64_t> s = shape.vec();
  s[0] = data.size(0);
  io::Dataset ds = f.root().create_dataset(name, dtype, s, opt);
  const at::Tensor c = data.contiguous().cpu();
  switch (c.scalar_type()) {
    case at::kFloat:
      ds.write(c.data_ptr<float>());
      break;
    case at::kDouble:
      ds.write(c.data_ptr<double>());
      break;
    case at::kLong:
      ds.write(c.data_ptr<int64_t>());
      break;
    default:
      NPEFF_ASSERT(false, "unexpected dtype ", c.scalar_type());
  }
}

// `path` as the file name a virtual dataset in `out` stores: relative to out's folder when
// both lie under one root, so that the two may move together, else absolute. Both sides are
// resolved first (symlinks included): HDF5 lets the OS resolve ".." from the folder it opened
// the virtual file in, which a lexical ".." would not match across a symlinked folder.
std::string relative_to(const std::string& path, const std::string& out) {
  const fs::path abs = fs::weakly_canonical(fs::absolute(path));
  const fs::path rel =
      abs.lexically_relative(fs::weakly_canonical(fs::absolute(out)).parent_path());
  return rel.empty() ? abs.string() : rel.string();
}

// The sources of a virtual /pefs and the settings id of the run that wrote each.
struct Sources {
  std::vector<io::VirtualSource> sources;
  std::vector<std::string> settings_ids;
};

// /pefs of `inputs`, in order, as the sources of a virtual /pefs in `out`: a virtual input
// contributes its own sources (re-rooted), so that no virtual dataset refers to another and the
// merged file does not depend on the intermediate files, only on the part files.
Sources pef_sources(const std::vector<std::string>& inputs, const std::string& out) {
  Sources all;
  int64_t row = 0;
  const auto add = [&](io::VirtualSource s, std::string id) {
    s.first_row = row;
    row += s.rows;
    all.sources.push_back(std::move(s));
    all.settings_ids.push_back(std::move(id));
  };
  for (const std::string& path : inputs) {
    const io::File f = io::File::open(path);
    const io::Dataset ds = f.root().dataset("pefs");
    if (ds.is_virtual()) {
      const std::vector<io::VirtualSource> own = ds.virtual_sources();
      const std::vector<std::string> ids = source_settings_ids(f.root(), own.size());
      for (size_t i = 0; i < own.size(); ++i) {
        io::VirtualSource s = own[i];
        s.file = relative_to(resolve_virtual_file(path, s.file), out);
        add(std::move(s), ids[i]);
      }
    } else if (ds.shape()[0] > 0) {
      add({relative_to(path, out), "pefs", 0, ds.shape()[0]}, pef_source_id(f));
    }
  }
  return all;
}

// Refuses inputs that hold the same PEFs twice: the same file given twice (under any name), or
// a merged file and a shard whose parts it already reads. Each example would appear twice in the
// result, which no stage downstream can tell from two examples.
void check_no_shared_pefs(const std::vector<std::string>& inputs) {
  std::vector<std::pair<fs::path, std::string>> seen;  // (the file holding the rows, input)
  for (const std::string& path : inputs) {
    const io::File f = io::File::open(path);
    const io::Dataset ds = f.root().dataset("pefs");
    std::vector<std::string> files;
    if (ds.is_virtual()) {
      for (const io::VirtualSource& s : ds.virtual_sources())
        files.push_back(resolve_virtual_file(path, s.file));
    } else {
      files.push_back(path);
    }
    for (const std::string& file : files) {
      std::error_code ec;
      fs::path id = fs::weakly_canonical(fs::absolute(file), ec);
      if (ec) id = fs::absolute(file).lexically_normal();
      for (const auto& [other, by] : seen)
        NPEFF_CHECK(id != other, "merge-pefs: ", path, " and ", by, " hold the same PEFs (", file,
                    "): give each shard once");
      seen.emplace_back(id, path);
    }
  }
}

// A virtual /pefs in `dst` over `s`, with each source's settings id (read_pef_info checks them).
void create_virtual_pefs(io::File& dst, io::DType dtype, int64_t m, int64_t r, int64_t d,
                         const Sources& s) {
  dst.root().create_virtual_dataset("pefs", dtype, {m, r, d}, s.sources);
  dst.root().set_attr("pefs_source_settings", nlohmann::json(s.settings_ids).dump());
}

// Appends the row datasets `names` of `inputs`, in order, to `dst` (created after the first),
// except those in `skip` (written as virtual datasets by the caller). String datasets "prompts"
// are joined. Returns the number of rows.
int64_t concatenate(const std::vector<std::string>& inputs, const std::vector<std::string>& names,
                    io::File& dst, const std::vector<std::string>& skip = {}) {
  int64_t total = 0;
  std::vector<std::string> prompts;
  bool any_prompts = false;
  for (const std::string& path : inputs) {
    const io::File f = io::File::open(path);
    const int64_t m = f.root().dataset("example_ids").shape()[0];
    for (const std::string& n : names) {
      NPEFF_CHECK(f.root().has(n), path, " lacks /", n, " which ", inputs.front(),
                  " has: the files were computed with different settings");
      const io::Dataset ds = f.root().dataset(n);
      const std::vector<int64_t> shape = ds.shape();
      NPEFF_CHECK(shape[0] == m, path, ":/", n, " has ", shape[0], " rows, /example_ids has ", m);
      if (std::find(skip.begin(), skip.end(), n) != skip.end()) continue;
      if (!dst.root().has(n)) {
        std::vector<int64_t> s = shape;
        s[0] = 0;
        io::DatasetOptions opt;
        opt.extendible = true;
        opt.compression = s.size() > 1 ? 0 : 4;
        dst.root().create_dataset(n, ds.dtype(), s, opt);
      }
      io::Dataset out = dst.root().dataset(n);
      NPEFF_CHECK(out.shape().size() == shape.size() &&
                      std::equal(shape.begin() + 1, shape.end(), out.shape().begin() + 1),
                  path, ":/", n, " has rows of another shape than in ", inputs.front());
      int64_t row = 1;
      for (size_t d = 1; d < shape.size(); ++d) row *= shape[d];
      const int64_t block = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, row));
      for (int64_t r = 0; r < m; r += block) {
        const int64_t k = std::min(block, m - r);
        std::vector<int64_t> offset(shape.size(), 0), count = shape;
        offset[0] = r;
        count[0] = k;
        const size_t size = static_cast<size_t>(k * row);
        if (ds.dtype() == io::DType::kInt64) {
          std::vector<int64_t> buf(size);
          ds.read_slab(offset, count, buf.data());
          out.append_rows(k, buf.data());
        } else if (ds.dtype() == io::DType::kFloat64) {
          std::vector<double> buf(size);
          ds.read_slab(offset, count, buf.data());
          out.append_rows(k, buf.data());
        } else {  // float32, or float16 read as float (exact) and stored back as float16
          std::vector<float> buf(size);
          ds.read_slab(offset, count, buf.data());
          out.append_rows(k, buf.data());
        }
      }
    }
    if (f.root().has("prompts")) {
      any_prompts = true;
      const auto p = f.root().dataset("prompts").read_strings();
      prompts.insert(prompts.end(), p.begin(), p.end());
    }
    total += m;
  }
  if (any_prompts) {
    NPEFF_CHECK(static_cast<int64_t>(prompts.size()) == total, "prompts of ", total,
                " examples expected, found ", prompts.size());
    dst.root().create_strings("prompts", prompts);
  }
  return total;
}

void write_parameters(io::File& f, const std::vector<std::string>& names,
                      const std::vector<int64_t>& offsets, const std::vector<int64_t>& numel,
                      const std::string& patterns, int64_t total) {
  io::Group g = f.root().create_group("parameters");
  g.create_strings("names", names);
  const int64_t n = static_cast<int64_t>(names.size());
  g.create_dataset("offsets", io::DType::kInt64, {n}).write(offsets.data());
  g.create_dataset("numel", io::DType::kInt64, {n}).write(numel.data());
  g.set_attr("patterns", patterns);
  g.set_attr("total", total);
}
}  // namespace

namespace {
constexpr const char* kFinishing = "finishing";  // marker: finish() has begun moving the folder

// finish() marks OUT.partial.d, removes OUT, renames the folder to OUT.parts and then writes OUT.
// Killed after the rename, a run left marked parts and no OUT: give them back to the resume
// folder so that a rerun finishes instead of starting over (io::ResumeDir still checks the
// settings). Unmarked parts without OUT (the user deleted OUT) are left alone.
const std::string& reclaim_parts(const std::string& out) {
  std::error_code ec;
  NPEFF_CHECK(!fs::is_directory(out, ec), out, ": is a directory; --out names the PEF file");
  const std::string resume_dir = out + ".partial.d", parts = parts_dir(out);
  if (!fs::exists(out, ec) && !fs::exists(resume_dir, ec) &&
      fs::exists(parts + "/" + kFinishing, ec)) {
    fs::rename(parts, resume_dir, ec);
    NPEFF_CHECK(!ec, "cannot move ", parts, " back to ", resume_dir, " to resume: ", ec.message());
    log::info("compute-pefs: ", out, " was not written by the run that moved its parts to ", parts,
              "; finishing it from them");
  }
  return out;
}
}  // namespace

std::string parts_dir(const std::string& out) {
  return out + ".parts";
}

PefWriter::PefWriter(PefWriterSpec spec)
    : spec_(std::move(spec)), resume_(reclaim_parts(spec_.path), spec_.settings) {
  for (; resume_.has(part_name(parts_)); ++parts_) {
    const io::File f = resume_.open(part_name(parts_));
    io::expect_schema(f, kPartSchema, kPartVersion);
    NPEFF_CHECK(f.root().attr_int("first_example") == done_, f.path(), " starts at example ",
                f.root().attr_int("first_example"), ", expected ", done_, ": delete ", part_dir(),
                " to start over");
    done_ += f.root().dataset("example_ids").shape()[0];
  }
}

std::string PefWriter::part_name(int64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "part-%06lld.h5", static_cast<long long>(index));
  return name;
}

void PefWriter::append(const pef::PefBatch& b, const std::vector<int64_t>& example_ids,
                       const std::vector<int64_t>& labels,
                       const std::vector<std::string>& prompts) {
  const size_t G = static_cast<size_t>(b.pefs.size(0));
  NPEFF_ASSERT(example_ids.size() == G && labels.size() == G && prompts.size() == G,
               "append: one id, label and prompt per example");
  pending_.push_back(b);
  pending_ids_.insert(pending_ids_.end(), example_ids.begin(), example_ids.end());
  pending_labels_.insert(pending_labels_.end(), labels.begin(), labels.end());
  pending_prompts_.insert(pending_prompts_.end(), prompts.begin(), prompts.end());
  if (static_cast<int64_t>(pending_ids_.size()) >= spec_.flush_examples) write_part();
}

void PefWriter::write_part() {
  if (pending_.empty()) return;
  const auto cat = [&](at::Tensor pef::PefBatch::*field) {
    std::vector<at::Tensor> parts;
    for (const pef::PefBatch& b : pending_) parts.push_back(b.*field);
    return at::cat(parts, 0);
  };
  const at::Tensor pefs = cat(&pef::PefBatch::pefs);
  io::File f = resume_.create(part_name(parts_));
  io::write_header(f, {kPartSchema, kPartVersion}, nlohmann::json::object());
  f.root().set_attr("first_example", done_);
  // Which run wrote the part: a file reading it (OUT, a merge) refuses a part a later run with
  // other settings put in its place.
  f.root().set_attr("settings_id", io::fingerprint_id(spec_.settings));
  create_rows(f, "pefs", spec_.float16 ? io::DType::kFloat16 : io::DType::kFloat32, pefs.sizes(),
              pefs);
  const at::Tensor ids = at::tensor(pending_ids_, at::kLong);
  create_rows(f, "example_ids", io::DType::kInt64, ids.sizes(), ids);
  create_rows(f, "raw_norms", io::DType::kFloat64, {0}, cat(&pef::PefBatch::raw_norms));
  create_rows(f, "param_norms", io::DType::kFloat64, {0}, cat(&pef::PefBatch::param_norms));
  create_rows(f, "labels", io::DType::kInt64, {0}, at::tensor(pending_labels_, at::kLong));
  create_rows(f, "prediction", io::DType::kInt64, {0},
              cat(&pef::PefBatch::prediction).to(at::kLong));
  const at::Tensor probs = cat(&pef::PefBatch::probs);
  create_rows(f, "probs", io::DType::kFloat32, probs.sizes(), probs);
  if (pending_.front().top_ids.defined()) {
    const at::Tensor top = cat(&pef::PefBatch::top_ids);
    create_rows(f, "top_ids", io::DType::kInt64, top.sizes(), top);
  }
  if (pending_.front().activations.defined()) {
    const at::Tensor act = cat(&pef::PefBatch::activations);
    create_rows(f, "activations", io::DType::kFloat32, act.sizes(), act);
  }
  f.root().create_strings("prompts", pending_prompts_);
  f.commit();  // rename: the part exists whole or not at all
  done_ += static_cast<int64_t>(pending_ids_.size());
  ++parts_;
  pending_.clear();
  pending_ids_.clear();
  pending_labels_.clear();
  pending_prompts_.clear();
}

void PefWriter::finish(const std::vector<std::string>& label_names,
                       const model::ParameterSelection& selection,
                       const projection::ProjectionRecord& projection) {
  write_part();
  std::vector<std::string> parts;
  const std::string dir = parts_dir(spec_.path);
  std::error_code ec;
  if (parts_ > 0) {
    // The parts become OUT's storage: /pefs of OUT is a virtual dataset over them, so each PEF
    // is written once. Order: mark the folder; remove an older OUT (so that no OUT ever names
    // parts of another run); remove the older OUT.parts; rename; write OUT. A kill at any point
    // leaves either the resume folder or marked OUT.parts without OUT, which reclaim_parts
    // turns back into the resume folder.
    // A part write that a kill interrupted left PART.h5.partial: not OUT's storage, so not kept.
    for (const auto& e : fs::directory_iterator(resume_.dir(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 8 && name.compare(name.size() - 8, 8, ".partial") == 0)
        fs::remove(e.path(), ec);
    }
    std::ofstream(resume_.path(kFinishing)).close();
    detail::fsync_path(resume_.dir(), false);
    fs::remove(spec_.path, ec);
    NPEFF_CHECK(!ec, "cannot remove the older ", spec_.path, ": ", ec.message());
    fs::remove_all(dir, ec);
    NPEFF_CHECK(!ec, "cannot remove the older ", dir, ": ", ec.message());
    fs::rename(resume_.dir(), dir, ec);
    NPEFF_CHECK(!ec, "cannot rename ", resume_.dir(), " to ", dir, ": ", ec.message());
    for (int64_t i = 0; i < parts_; ++i) parts.push_back(dir + "/" + part_name(i));
  } else {
    fs::remove_all(dir, ec);  // an older result's parts: this OUT names none
  }
  io::File out = io::File::create(spec_.path);
  io::write_header(out, {kPefSchema, kPefSchemaVersion}, spec_.provenance);
  if (!parts.empty()) {
    const int64_t m =
        concatenate(parts, row_datasets(io::File::open(parts.front())), out, {"pefs"});
    create_virtual_pefs(out, spec_.float16 ? io::DType::kFloat16 : io::DType::kFloat32, m,
                        spec_.rank, spec_.dim, pef_sources(parts, spec_.path));
  } else {  // an empty shard: empty datasets of the right rank
    out.root().create_dataset("pefs", spec_.float16 ? io::DType::kFloat16 : io::DType::kFloat32,
                              {0, spec_.rank, spec_.dim});
    for (const char* n : {"example_ids", "labels", "prediction"})
      out.root().create_dataset(n, io::DType::kInt64, {0});
    for (const char* n : {"raw_norms", "param_norms"})
      out.root().create_dataset(n, io::DType::kFloat64, {0});
  }
  if (!label_names.empty()) out.root().create_strings("label_names", label_names);
  std::vector<std::string> names;
  std::vector<int64_t> offsets, numel;
  for (const auto& s : selection.slices()) {
    names.push_back(s.name);
    offsets.push_back(s.offset);
    numel.push_back(s.numel);
  }
  write_parameters(out, names, offsets, numel, selection.patterns(), selection.total());
  projection::write_projection_group(out, projection);
  out.commit();
  if (!parts.empty()) fs::remove(dir + "/" + kFinishing, ec);  // OUT names them now
  resume_.finish();
}

int64_t merge_pef_files(const std::vector<std::string>& inputs, const std::string& out,
                        const nlohmann::json& provenance, bool copy) {
  const std::vector<PefFileInfo> infos = read_compatible_pef_infos(inputs);
  for (const PefFileInfo& info : infos) {
    NPEFF_CHECK(copy || info.dtype == infos.front().dtype, info.path, " stores its PEFs as ",
                io::to_string(info.dtype), " but ", infos.front().path, " as ",
                io::to_string(infos.front().dtype),
                ": merge them with --copy (which converts to the first file's type)");
    NPEFF_CHECK(fs::absolute(info.path).lexically_normal() != fs::absolute(out).lexically_normal(),
                "merge-pefs: the output ", out, " is also an input");
  }
  check_no_shared_pefs(inputs);
  const io::File first = io::File::open(inputs.front());
  const auto param_names = [](const io::File& f) {
    if (!f.root().has("parameters")) return std::vector<std::string>{};
    return f.root().group("parameters").dataset("names").read_strings();
  };
  const std::vector<std::string> params = param_names(first);
  for (size_t i = 1; i < inputs.size(); ++i) {
    NPEFF_CHECK(param_names(io::File::open(inputs[i])) == params, inputs[i], " and ",
                inputs.front(), " were computed over different selected parameters");
  }
  io::File dst = io::File::create(out);
  io::write_header(dst, {kPefSchema, kPefSchemaVersion}, provenance);
  int64_t total = 0;
  if (copy) {
    total = concatenate(inputs, row_datasets(first), dst);
  } else {
    total = concatenate(inputs, row_datasets(first), dst, {"pefs"});
    create_virtual_pefs(dst, infos.front().dtype, total, infos.front().rank, infos.front().dim,
                        pef_sources(inputs, out));
  }
  if (first.root().has("label_names"))
    dst.root().create_strings("label_names", first.root().dataset("label_names").read_strings());
  if (first.root().has("parameters")) {
    const io::Group src = first.root().group("parameters");
    std::vector<int64_t> offsets(params.size()), numel(params.size());
    src.dataset("offsets").read(offsets.data());
    src.dataset("numel").read(numel.data());
    write_parameters(dst, params, offsets, numel, src.attr_string("patterns"),
                     src.attr_int("total"));
  }
  if (infos.front().has_projection)
    projection::write_projection_group(dst, infos.front().projection);
  dst.commit();
  return total;
}

}  // namespace npeff::io
