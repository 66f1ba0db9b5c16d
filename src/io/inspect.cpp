// `npeff inspect`: validate an npeff file and summarise it (include/npeff/io/inspect.h).
#include "npeff/io/inspect.h"

#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "io/hdf5_internal.h"
#include "npeff/core/error.h"
#include "npeff/core/version.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/pef_file.h"
#include "npeff/io/schema.h"

namespace npeff::io {
namespace {

using nlohmann::json;

// Datasets with at most this many elements are read completely; larger ones only at their first
// and last element (which reads and decompresses the first and last chunk).
constexpr std::int64_t kFullReadElements = std::int64_t{1} << 22;
constexpr int kMaxDepth = 64;

const std::set<std::string>& standard_root_attrs() {
  static const std::set<std::string> names = {"npeff_schema",  "npeff_schema_version",
                                              "npeff_version", "created_utc",
                                              "command_line",  "provenance"};
  return names;
}

json attributes_of(const Object& o) {
  json attrs = json::object();
  for (const std::string& name : o.attr_names()) attrs[name] = o.attr_display(name);
  return attrs;
}

// dtype name for display; also covers types npeff does not read (int16, compound...).
std::string dtype_name(const Dataset& ds, H5T_class_t* cls) {
  Handle type = detail::checked_read(
      H5Dget_type(ds.id()), ds.file_name() + ": dataset " + ds.path() + ": cannot read its type");
  *cls = H5Tget_class(type.get());
  try {
    return to_string(ds.dtype());
  } catch (const Error&) {
    const std::size_t bits = H5Tget_size(type.get()) * 8;
    if (*cls == H5T_INTEGER) {
      return (H5Tget_sign(type.get()) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    }
    if (*cls == H5T_FLOAT) return "float" + std::to_string(bits);
    const char* kind = *cls == H5T_COMPOUND ? "compound"
                       : *cls == H5T_ENUM   ? "enum"
                       : *cls == H5T_ARRAY  ? "array"
                       : *cls == H5T_VLEN   ? "vlen sequence"
                       : *cls == H5T_OPAQUE ? "opaque"
                                            : "other";
    return std::string(kind) + " (" + std::to_string(bits / 8) + " bytes, unsupported by npeff)";
  }
}

json filters_of(const Dataset& ds) {
  json filters = json::array();
  Handle dcpl(H5Dget_create_plist(ds.id()));
  if (!dcpl.valid()) return filters;
  const int n = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    std::size_t nvalues = 4;
    unsigned values[4] = {0, 0, 0, 0};
    char name[64] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nvalues,
                                           values, sizeof name, name, nullptr);
    if (id == H5Z_FILTER_DEFLATE) {
      filters.push_back("deflate(" + std::to_string(nvalues > 0 ? values[0] : 0) + ")");
    } else if (id == H5Z_FILTER_SHUFFLE) {
      filters.push_back("shuffle");
    } else {
      filters.push_back(name[0] ? std::string(name) : "filter " + std::to_string(id));
    }
  }
  return filters;
}

// Reads the data (all of it for small datasets, the first and last element otherwise) so that a
// file whose metadata survived but whose data did not is reported as corrupt.
void check_readable(const Dataset& ds, H5T_class_t cls, const std::vector<std::int64_t>& shape) {
  std::int64_t points = 1;
  for (std::int64_t d : shape) points *= d;
  if (points == 0) return;
  if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    if (points <= kFullReadElements) {
      std::vector<double> buf(static_cast<std::size_t>(points));
      ds.read(buf.data());
      return;
    }
    const std::vector<std::int64_t> one(shape.size(), 1);
    std::vector<std::int64_t> last(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) last[i] = shape[i] - 1;
    double value = 0;
    ds.read_slab(std::vector<std::int64_t>(shape.size(), 0), one, &value);
    ds.read_slab(last, one, &value);
  } else if (cls == H5T_STRING && shape.size() <= 1 && points <= kFullReadElements) {
    ds.read_strings();
  }
}

json describe_dataset(const Dataset& ds) {
  json d;
  d["path"] = ds.path();
  H5T_class_t cls = H5T_NO_CLASS;
  d["dtype"] = dtype_name(ds, &cls);
  const std::vector<std::int64_t> shape = ds.shape();
  d["shape"] = shape;
  d["chunks"] = ds.chunks();
  if (ds.is_virtual()) {  // rows in other files (compute-pefs / merge-pefs part files)
    try {
      const std::vector<VirtualSource> sources = ds.virtual_sources();
      d["virtual_files"] = sources.size();
      if (!sources.empty()) d["virtual_first_file"] = sources.front().file;
    } catch (const Error& e) {  // not npeff's form (a file made elsewhere): say so, show the rest
      d["virtual_files"] = -1;
      d["virtual_first_file"] = e.what();
    }
  }
  d["filters"] = filters_of(ds);
  d["attributes"] = attributes_of(ds);
  check_readable(ds, cls, shape);
  return d;
}

void walk(const Group& group, json& groups, json& datasets, int depth) {
  NPEFF_CHECK(depth < kMaxDepth, group.file_name(), ": groups nested deeper than ", kMaxDepth,
              " levels at ", group.path(), " (link cycle?)");
  for (const std::string& name : group.children()) {
    // Only hard links: soft and external links may dangle or point outside the file.
    H5L_info_t link_info;
    if (H5Lget_info(group.id(), name.c_str(), &link_info, H5P_DEFAULT) < 0 ||
        link_info.type != H5L_TYPE_HARD) {
      continue;
    }
    if (group.is_group(name)) {
      const Group child = group.group(name);
      groups.push_back({{"path", child.path()}, {"attributes", attributes_of(child)}});
      walk(child, groups, datasets, depth + 1);
      continue;
    }
    Handle obj =
        detail::checked_read(H5Oopen(group.id(), name.c_str(), H5P_DEFAULT),
                             group.file_name() + ": object " +
                                 detail::join_path(group.path(), name) + " cannot be opened");
    if (H5Iget_type(obj.get()) == H5I_DATASET)
      datasets.push_back(describe_dataset(group.dataset(name)));
  }
}

std::string string_attr_or_empty(const Group& root, const char* name) {
  return root.has_attr(name) ? root.attr_string(name) : std::string();
}

std::string join(const json& values, const char* sep) {
  std::string out;
  for (const json& v : values) {
    if (!out.empty()) out += sep;
    out += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return out;
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out += prefix + line + "\n";
  return out;
}

void format_attributes(std::ostringstream& os, const json& attrs, const std::string& prefix,
                       bool skip_standard) {
  if (!attrs.is_object()) return;
  for (const auto& item : attrs.items()) {
    if (skip_standard && standard_root_attrs().count(item.key())) continue;
    os << prefix << item.key() << " = "
       << (item.value().is_string() ? item.value().get<std::string>() : item.value().dump())
       << "\n";
  }
}

}  // namespace

json inspect_file(const std::string& path) {
  const File file = File::open(path);
  const Group& root = file.root();
  const SchemaId schema = read_schema(file);

  const SchemaInfo* info = nullptr;
  std::string known;
  for (const SchemaInfo& s : known_schemas()) {
    if (schema.name == s.name) info = &s;
    known += (known.empty() ? "" : ", ") + std::string(s.name);
  }
  NPEFF_CHECK(info != nullptr, path, ": unknown npeff schema '", schema.name, "' (this npeff (",
              npeff::version(), ") knows ", known, ")");
  NPEFF_CHECK(schema.version >= 1 && schema.version <= info->version, path, ": schema '",
              schema.name, "' version ", schema.version, " is not supported by this npeff (",
              npeff::version(), "), which reads version ", info->version);

  json summary;
  summary["path"] = path;
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  summary["file_bytes"] = ec ? 0 : static_cast<std::uint64_t>(bytes);
  summary["schema"] = schema.name;
  summary["schema_version"] = schema.version;
  summary["schema_description"] = info->description;
  summary["npeff_version"] = string_attr_or_empty(root, "npeff_version");
  summary["created_utc"] = string_attr_or_empty(root, "created_utc");
  summary["command_line"] = string_attr_or_empty(root, "command_line");
  summary["provenance"] = read_provenance(file);
  summary["attributes"] = attributes_of(root);
  json groups = json::array();
  json datasets = json::array();
  walk(root, groups, datasets, 0);
  summary["groups"] = groups;
  summary["datasets"] = datasets;
  // A virtual /pefs reads missing or replaced parts as NaN or as other PEFs: the checks every
  // reader makes (npeff::Error naming the part).
  if (schema.name == kPefSchema) read_pef_info(path);
  return summary;
}

std::string format_inspection(const json& summary) {
  std::ostringstream os;
  const auto str = [&](const char* key) {
    return summary.contains(key) && summary[key].is_string() ? summary[key].get<std::string>()
                                                             : std::string();
  };
  os << str("path");
  if (summary.contains("file_bytes")) os << " (" << summary["file_bytes"].dump() << " bytes)";
  os << "\n";
  os << "  schema:       " << str("schema") << " version "
     << (summary.contains("schema_version") ? summary["schema_version"].dump() : "?");
  if (!str("schema_description").empty()) os << ": " << str("schema_description");
  os << "\n";
  if (!str("npeff_version").empty() || !str("created_utc").empty()) {
    os << "  written by:   npeff " << str("npeff_version") << " at " << str("created_utc") << "\n";
  }
  if (!str("command_line").empty()) os << "  command line: " << str("command_line") << "\n";
  if (summary.contains("provenance") && !summary["provenance"].empty()) {
    os << "  provenance:\n" << indent(summary["provenance"].dump(2), "    ");
  }
  if (summary.contains("attributes")) {
    std::ostringstream extra;
    format_attributes(extra, summary["attributes"], "    ", true);
    if (!extra.str().empty()) os << "  attributes:\n" << extra.str();
  }
  if (summary.contains("groups") && !summary["groups"].empty()) {
    os << "  groups:\n";
    for (const json& g : summary["groups"]) {
      os << "    " << g.value("path", std::string()) << "\n";
      if (g.contains("attributes")) format_attributes(os, g["attributes"], "      ", false);
    }
  }
  if (summary.contains("datasets") && !summary["datasets"].empty()) {
    os << "  datasets:\n";
    for (const json& d : summary["datasets"]) {
      os << "    " << d.value("path", std::string()) << "  " << d.value("dtype", std::string())
         << " [" << (d.contains("shape") ? join(d["shape"], ", ") : "") << "]";
      if (d.contains("virtual_files")) {
        const std::int64_t files = d["virtual_files"].get<std::int64_t>();
        os << "  virtual over " << files << (files == 1 ? " file (" : " files (")
           << d.value("virtual_first_file", std::string()) << ", ...)";
      } else if (d.contains("chunks") && !d["chunks"].empty()) {
        os << "  chunks [" << join(d["chunks"], ", ") << "]";
      } else {
        os << "  contiguous";
      }
      if (d.contains("filters") && !d["filters"].empty()) os << "  " << join(d["filters"], "+");
      os << "\n";
      if (d.contains("attributes")) format_attributes(os, d["attributes"], "      ", false);
    }
  }
  return os.str();
}

}  // namespace npeff::io
