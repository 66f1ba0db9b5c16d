// Thin RAII layer over the HDF5 C API. Every npeff file goes through it.
//
// Design (see docs/formats.md):
//  - every hid_t is owned by a Handle that closes it with the right H5*close;
//  - HDF5's own error printing is turned off; every failure becomes npeff::Error with the file
//    and object path in the message;
//  - datasets are chunked and compressed (shuffle + deflate) by default, and may be created
//    extendible along dim 0 so that resumable writers append rows in place;
//  - files are written under a temporary name and renamed into place by File::commit(), so a
//    final path never holds a half-written file.
// Only float16/float32/float64/int32/int64/uint8 numeric datasets and UTF-8 string
// attributes/datasets are supported; that is all npeff's schemas use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace npeff::io {

/// Element types npeff stores.
enum class DType { kFloat32, kFloat64, kFloat16, kInt32, kInt64, kUInt8, kString };
std::string to_string(DType dtype);
/// Size in bytes of one element (kString: 0, variable length).
std::size_t dtype_size(DType dtype);

/// Owns one HDF5 identifier. Movable, not copyable.
class Handle {
 public:
  Handle() = default;
  explicit Handle(std::int64_t id) : id_(id) {}
  ~Handle();
  Handle(Handle&& other) noexcept : id_(other.release()) {}
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  std::int64_t get() const { return id_; }
  std::int64_t release() {
    std::int64_t id = id_;
    id_ = -1;
    return id;
  }
  bool valid() const { return id_ >= 0; }

 private:
  std::int64_t id_ = -1;
};

/// Options for creating a numeric dataset.
struct DatasetOptions {
  /// Chunk shape; empty = choose automatically (about 1 MiB per chunk, rows kept whole when they
  /// fit).
  std::vector<std::int64_t> chunks;
  /// Deflate level 0..9; 0 = no compression. Shuffle is applied whenever level > 0.
  int compression = 4;
  /// Allow dim 0 to grow later (append_rows). The initial extent may be 0.
  bool extendible = false;
};

/// One mapping of a virtual dataset (HDF5 VDS, 1.10+): rows [first_row, first_row + rows) of the
/// virtual dataset are the whole dataset `dataset` of the file `file` (a path relative to the
/// virtual dataset's own folder, or absolute), whose shape is [rows, <the virtual rows' shape>].
struct VirtualSource {
  std::string file;
  std::string dataset;
  std::int64_t first_row = 0;
  std::int64_t rows = 0;
};

/// Something attributes can be attached to (a file's root group, a group, a dataset).
class Object {
 public:
  Object() = default;
  Object(Handle handle, std::string path, std::string file_name)
      : handle_(std::move(handle)), path_(std::move(path)), file_name_(std::move(file_name)) {}
  std::int64_t id() const { return handle_.get(); }
  const std::string& path() const { return path_; }
  const std::string& file_name() const { return file_name_; }

  bool has_attr(const std::string& name) const;
  std::vector<std::string> attr_names() const;
  // Attribute writers overwrite an existing attribute of the same name.
  void set_attr(const std::string& name, const std::string& value);
  void set_attr(const std::string& name, const char* value) { set_attr(name, std::string(value)); }
  void set_attr(const std::string& name, std::int64_t value);
  void set_attr(const std::string& name, int value) { set_attr(name, std::int64_t{value}); }
  void set_attr(const std::string& name, std::uint64_t value);
  void set_attr(const std::string& name, double value);
  void set_attr(const std::string& name, const std::vector<std::int64_t>& value);
  void set_attr(const std::string& name, const std::vector<double>& value);
  // Readers throw npeff::Error naming the file, object, attribute and the type found vs expected.
  std::string attr_string(const std::string& name) const;
  std::int64_t attr_int(const std::string& name) const;
  std::uint64_t attr_uint(const std::string& name) const;
  double attr_double(const std::string& name) const;
  std::vector<std::int64_t> attr_int_vector(const std::string& name) const;
  std::vector<double> attr_double_vector(const std::string& name) const;
  /// A short description of an attribute's value for display (inspect), e.g. "\"abc\"", "[1, 2]".
  std::string attr_display(const std::string& name) const;

 protected:
  Handle handle_;
  std::string path_;
  std::string file_name_;
};

class Dataset : public Object {
 public:
  using Object::Object;
  DType dtype() const;
  std::vector<std::int64_t> shape() const;
  std::vector<std::int64_t> chunks() const;  // empty when contiguous
  /// Validates dtype and rank (and each dim where expected[i] >= 0); throws npeff::Error
  /// saying what was found and what was expected.
  void expect(DType dtype, const std::vector<std::int64_t>& expected_shape) const;

  // Whole-dataset and hyperslab I/O for numeric types. `data` must hold the selection's element
  // count; types are converted by HDF5 where they differ (e.g. float64 file -> float32 memory).
  void read(float* data) const;
  void read(double* data) const;
  void read(std::int64_t* data) const;
  void read(std::int32_t* data) const;
  void read_slab(const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& count,
                 float* data) const;
  void read_slab(const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& count,
                 double* data) const;
  void read_slab(const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& count,
                 std::int64_t* data) const;
  void write(const float* data);
  void write(const double* data);
  void write(const std::int64_t* data);
  void write(const std::int32_t* data);
  void write_slab(const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& count,
                  const float* data);
  /// Appends `rows` rows along dim 0 (dataset created with extendible = true).
  void append_rows(std::int64_t rows, const float* data);
  void append_rows(std::int64_t rows, const std::int64_t* data);
  void append_rows(std::int64_t rows, const double* data);
  /// Shrinks or grows dim 0 (extendible datasets), e.g. to drop rows past the last flushed one.
  void resize_rows(std::int64_t rows);
  /// 1-d variable-length UTF-8 string datasets.
  std::vector<std::string> read_strings() const;
  /// Whether the dataset is virtual (its rows live in other files; see VirtualSource).
  bool is_virtual() const;
  /// The mappings of a virtual dataset, in the order they were defined (file names as stored).
  /// npeff::Error when a mapping is not whole source rows onto a block of rows.
  std::vector<VirtualSource> virtual_sources() const;
};

class Group : public Object {
 public:
  using Object::Object;
  bool has(const std::string& name) const;  // child link exists
  std::vector<std::string> children() const;
  bool is_group(const std::string& name) const;
  Group group(const std::string& name) const;      // open existing
  Group create_group(const std::string& name);     // create (error if it exists)
  Group require_group(const std::string& name);    // open or create
  Dataset dataset(const std::string& name) const;  // open existing
  Dataset create_dataset(const std::string& name, DType dtype,
                         const std::vector<std::int64_t>& shape,
                         const DatasetOptions& options = {});
  /// Creates a 1-d variable-length UTF-8 string dataset.
  Dataset create_strings(const std::string& name, const std::vector<std::string>& values);
  /// Creates a virtual dataset of `shape` (dim 0: rows) whose rows are `sources`, which must
  /// tile [0, shape[0]) in order. Rows whose source file is missing when read come back as NaN
  /// (the fill value), not as zeros, so that a reader (h5py included) cannot mistake them for
  /// data. dtype: kFloat16 or kFloat32.
  Dataset create_virtual_dataset(const std::string& name, DType dtype,
                                 const std::vector<std::int64_t>& shape,
                                 const std::vector<VirtualSource>& sources);
};

enum class OpenMode { kRead, kReadWrite };

/// An open HDF5 file. Files created with File::create are written at a temporary name
/// (temp_path(path) = "<path>.partial", deterministic so that a rerun in another process finds
/// it) and appear at `path` only after commit(); if the File is destroyed without commit() the
/// temporary file is removed, unless keep_partial() was called (resumable writers keep it so that
/// a rerun can continue it).
/// Groups and datasets of a file opened for writing (create/resume) are closed by commit() and
/// close() and must not be used afterwards. Not thread-safe (serial HDF5).
class File {
 public:
  File() = default;
  ~File();
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  /// Opens an existing file. Throws npeff::Error with a clear message if it does not exist, is
  /// not HDF5, or is truncated/corrupt.
  static File open(const std::string& path, OpenMode mode = OpenMode::kRead);
  /// Starts writing a new file destined for `path` (written at temp_path(path) until commit()).
  /// Overwrites any stale temporary file.
  static File create(const std::string& path);
  /// Reopens a partial file left at temp_path(path) for appending, or returns an invalid File
  /// if there is none. The partial file pre-dates this process, so keep_partial() is already set
  /// on the result. Throws npeff::Error if the partial file cannot be opened (delete it to start
  /// over).
  static File resume(const std::string& path);
  /// The temporary name used while `final_path` is being written: "<final_path>.partial".
  static std::string temp_path(const std::string& final_path);

  bool valid() const { return root_.id() >= 0; }
  Group& root() { return root_; }
  const Group& root() const { return root_; }
  const std::string& path() const { return path_; }  // final path
  void flush();
  /// Closes the file and atomically renames the temporary file to the final path.
  void commit();
  /// Do not delete the temporary file when this object is destroyed without commit().
  void keep_partial() { keep_partial_ = true; }
  /// Closes without committing (removes the temporary file unless keep_partial()).
  void close();

 private:
  Handle file_;
  Group root_;
  std::string path_;
  std::string temp_path_;  // non-empty while writing
  bool keep_partial_ = false;
};

/// Turns off HDF5's automatic error stack printing (done once, idempotent). Called by every
/// entry point above; exposed for tests.
void silence_hdf5_errors();

}  // namespace npeff::io
