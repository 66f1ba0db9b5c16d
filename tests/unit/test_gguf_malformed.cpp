// GGUF reader (include/npeff/io/gguf.h) on malformed files: each check with its message, and
// truncation and byte-mutation sweeps that must only ever produce npeff::Error (run under ASan
// by tools/run-tests.sh). Valid files are in test_gguf.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "npeff/core/error.h"
#include "npeff/io/gguf.h"
#include "unit/gguf_test_fixture.h"
#include "unit/gguf_writer.h"
#include "unit/test_util.h"

namespace {

using npeff::gguf::File;
using npeff::gguf::TensorInfo;
using npeff::gguf::TensorType;
using npeff::gguf::ValueType;
using npeff::testing::expect_error;
using npeff::testing::GgufBytes;
using npeff::testing::GgufTest;
using npeff::testing::GgufWriter;
using npeff::testing::rich_writer;
using npeff::testing::write_bytes;

// Header bytes for hand-made files: magic, version, tensor_count, kv_count.
GgufBytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  GgufBytes b;
  b.raw({'G', 'G', 'U', 'F'}).u32(version).u64(n_tensors).u64(n_kv);
  return b;
}

// ---- Malformed files -------------------------------------------------------------------------

TEST_F(GgufTest, MissingEmptyAndNonRegularFiles) {
  expect_error([&] { File::open(path("none.gguf")); }, {"cannot open", path("none.gguf")});
  expect_error([&] { File::open(write(std::vector<uint8_t>{}, "empty.gguf")); },
               {"empty", "byte 0"});
  expect_error([&] { File::open(dir_.string()); }, {"not a regular file"});
}

TEST_F(GgufTest, BadHeader) {
  expect_open_error(std::vector<uint8_t>{'G', 'G', 'U'}, {"byte 0", "truncated", "magic"});
  GgufBytes ggml;
  ggml.raw({'g', 'g', 'm', 'l', 0x01}).u32(3).u64(0).u64(0);
  expect_open_error(ggml.data, {"byte 0", "not a GGUF file", "magic is 'ggml'", "'GGUF'"});
  expect_open_error(header(0, 0, 1).data, {"byte 4", "version 1 is not supported", "2 or 3"});
  expect_open_error(header(0, 0, 4).data, {"byte 4", "unsupported GGUF version 4", "2 or 3"});
  expect_open_error(header(0, 0, 0x03000000u).data, {"byte 4", "big-endian"});
  std::vector<uint8_t> short_header = header(0, 0).data;
  short_header.resize(20);
  expect_open_error(short_header, {"byte 16", "truncated", "kv_count", "8 bytes", "only 4"});
}

TEST_F(GgufTest, AbsurdCounts) {
  expect_open_error(header(0, 1ull << 60).data, {"byte 16", "kv_count 1152921504606846976",
                                                 "impossible", "0 metadata entries"});
  GgufWriter w;
  w.add_u8("a", 1);
  w.kv_count_override = 100;
  expect_open_error(w, {"kv_count 100", "impossible"});
  expect_open_error(header(1ull << 62, 0).data, {"byte 8", "tensor_count", "impossible"});
  GgufWriter t;
  t.add_f32_tensor("a", {1}, {1});
  t.tensor_count_override = 2;  // the second info reads past the end or into padding
  expect_open_error(t, {"tensor info"});
}

TEST_F(GgufTest, StringLengthsPastEof) {
  GgufBytes b = header(0, 1);
  b.u64(1000).raw(std::vector<uint8_t>(20, 'a'));
  expect_open_error(b.data, {"byte 24", "key has length 1000", "only 20 bytes remain"});

  GgufBytes v = header(0, 1);
  v.str("k").u32(8).u64(~0ull);
  expect_open_error(
      v.data, {"byte 37", "string value has length 18446744073709551615", "metadata key 'k'"});

  GgufBytes a = header(0, 1);
  a.str("k").u32(9).u32(8).u64(2).str("ok").u64(99).raw({'x'});
  expect_open_error(a.data, {"array string has length 99", "metadata key 'k'"});
}

TEST_F(GgufTest, InvalidValueTypes) {
  GgufBytes b = header(0, 1);
  b.str("k").u32(13).u64(0);
  expect_open_error(b.data,
                    {"byte 33", "invalid value type 13", "expected 0..12", "metadata key 'k'"});
  GgufBytes e = header(0, 1);
  e.str("k").u32(9).u32(0xFFFFFFFFu).u64(0);
  expect_open_error(e.data, {"byte 37", "invalid array element type 4294967295"});
}

TEST_F(GgufTest, NestedArraysRefused) {
  GgufBytes b = header(0, 1);
  b.str("nested").u32(9).u32(9).u64(1).u32(4).u64(1).u32(7);
  expect_open_error(b.data, {"nested arrays are not supported", "metadata key 'nested'"});
}

TEST_F(GgufTest, AbsurdArrayLengths) {
  GgufBytes n = header(0, 1);
  n.str("k").u32(9).u32(6).u64(1ull << 62).u32(0);
  expect_open_error(
      n.data, {"byte 41", "array length 4611686018427387904 of float32", "only 4 bytes remain"});
  GgufBytes s = header(0, 1);
  s.str("k").u32(9).u32(8).u64(1000).str("a");
  expect_open_error(s.data, {"array length 1000 is impossible", "at least 8"});
}

TEST_F(GgufTest, InvalidBools) {
  GgufBytes b = header(0, 1);
  b.str("k").u32(7).raw({2});
  expect_open_error(b.data, {"byte 37", "invalid bool byte 2", "0 or 1"});
  GgufWriter a;
  a.add_array<uint8_t>("flags", ValueType::BOOL, {0, 1, 255});
  expect_open_error(a, {"invalid bool byte 255", "metadata key 'flags'"});
}

TEST_F(GgufTest, DuplicateAndEmptyKeys) {
  GgufWriter w;
  w.add_u8("a", 1).add_string("a", "again");
  expect_open_error(w, {"byte 38", "duplicate metadata key 'a'"});
  GgufWriter e;
  e.add_u8("", 1);
  expect_open_error(e, {"byte 24", "empty metadata key"});
}

TEST_F(GgufTest, BadAlignment) {
  GgufWriter t;
  t.add_u64("general.alignment", 64);
  expect_open_error(t, {"general.alignment has type uint64", "expected uint32"});
  for (uint32_t bad : {0u, 48u, 0x80000001u}) {
    GgufWriter w;  // not set_alignment(): the writer would lay the file out with it
    w.add_u32("general.alignment", bad);
    expect_open_error(w, {"general.alignment is " + std::to_string(bad), "power of two"});
  }
}

TEST_F(GgufTest, DuplicateAndLongTensorNames) {
  GgufWriter w;
  w.add_f32_tensor("w", {1}, {1}).add_f32_tensor("w", {1}, {2});
  expect_open_error(w, {"byte 57", "duplicate tensor name 'w'"});
  GgufWriter l;
  l.add_f32_tensor(std::string(64, 'n'), {1}, {1});
  expect_open_error(l, {"byte 24", "is 64 bytes long", "fewer than 64"});
  GgufWriter ok;
  ok.add_f32_tensor(std::string(63, 'n'), {1}, {1});
  EXPECT_NO_THROW(File::open(write(ok, "ok.gguf")));
}

TEST_F(GgufTest, BadShapes) {
  GgufWriter d;
  d.add_tensor("t", {1, 1, 1, 1, 1}, TensorType::F32, {0, 0, 0, 0});
  expect_open_error(d, {"byte 33", "5 dimensions", "at most 4", "tensor info of 't'"});
  GgufWriter n;
  n.add_tensor("t", {2, ~0ull}, TensorType::F32, {});
  expect_open_error(n, {"byte 45", "dimension 1 is -1", "non-negative"});
  GgufWriter o;
  o.add_tensor("t", {1ull << 32, 1ull << 32}, TensorType::F32, {});
  expect_open_error(o, {"byte 45", "more than 2^63 elements"});
  GgufWriter b;
  b.add_tensor("t", {1ull << 61}, TensorType::F64, {});
  expect_open_error(b, {"more than 2^64 bytes", "F64"});
  GgufWriter q;
  q.add_tensor("t", {31, 2}, TensorType::Q4_0, std::vector<uint8_t>(36));
  expect_open_error(q, {"ne[0] = 31", "not a multiple of the block size 32 of Q4_0"});
}

TEST_F(GgufTest, UnknownTensorTypes) {
  for (uint32_t type : {4u, 31u, 99u}) {
    GgufWriter w;
    w.add_tensor("t", {32}, type, std::vector<uint8_t>(32));
    expect_open_error(w, {"byte 45", "unknown ggml type " + std::to_string(type)});
  }
}

TEST_F(GgufTest, TensorDataOutOfFile) {
  GgufWriter w;
  w.add_f32_tensor("a", {4}, {1, 2, 3, 4});
  std::vector<uint8_t> bytes = w.build();
  bytes.resize(w.data_offset() + 15);  // one byte short
  expect_open_error(
      bytes, {"tensor data [0, 0 + 16)", "extends past the end of the file", "tensor info of 'a'"});
  GgufBytes far = header(1, 0);  // by hand: build() would place the data at that offset
  far.str("b").u32(1).u64(4).u32(0).u64(1ull << 62);
  far.data.resize(128, 0);
  expect_open_error(far.data, {"byte 24", "tensor data [4611686018427387904, ",
                               "extends past the end of the file (128 bytes)"});
}

TEST_F(GgufTest, OffsetOverflowIsCaught) {
  GgufBytes b = header(1, 0);
  b.str("a").u32(1).u64(4).u32(0).u64(~0ull - 31);  // offset + nbytes overflows uint64
  b.data.resize(128, 0);
  expect_open_error(b.data, {"extends past the end of the file"});
}

TEST_F(GgufTest, DataSectionPastEof) {
  GgufBytes b = header(1, 0);
  b.str("z").u32(1).u64(0).u32(0).u64(0);  // zero-size tensor, infos end at byte 57
  expect_open_error(b.data, {"byte 57", "data section would start at byte 64"});
  b.data.resize(64, 0);
  EXPECT_NO_THROW(File::open(write(b.data, "ok.gguf")));
}

TEST_F(GgufTest, MisalignedAndOverlappingTensors) {
  GgufWriter m;
  m.add_f32_tensor("a", {4}, {1, 2, 3, 4});
  m.add_tensor("b", {4}, TensorType::F32, std::vector<uint8_t>(16), 36);
  expect_open_error(
      m, {"tensor data offset 36 is not a multiple of the alignment 32", "tensor info of 'b'"});
  GgufWriter o;
  o.add_f32_tensor("a", {16}, std::vector<float>(16, 1.f));
  o.add_tensor("b", {4}, TensorType::F32, std::vector<uint8_t>(16), 32);
  expect_open_error(o, {"tensor 'b' data [32, 48) overlaps tensor 'a' data [0, 64)"});
  GgufWriter s;  // same offset, out of file order
  s.add_tensor("late", {8}, TensorType::F32, std::vector<uint8_t>(32), 64);
  s.add_tensor("early", {8}, TensorType::F32, std::vector<uint8_t>(32), 0);
  s.add_tensor("also_early", {8}, TensorType::F32, std::vector<uint8_t>(32), 0);
  expect_open_error(s, {"overlaps"});
  GgufWriter r;  // out-of-order but disjoint tensors, and a zero-size tensor inside another
  r.add_tensor("late", {8}, TensorType::F32, std::vector<uint8_t>(32), 64);
  r.add_tensor("early", {16}, TensorType::F32, std::vector<uint8_t>(64), 0);
  r.add_tensor("nothing", {0}, TensorType::F32, {}, 32);
  const File f = File::open(write(r, "ok.gguf"));
  EXPECT_EQ(f.tensor("late").offset, 64u);
}

// ---- Sweeps ----------------------------------------------------------------------------------

// Opens `bytes` and, when that succeeds, touches everything the File exposes (for ASan). Returns
// false when opening threw npeff::Error; any other exception fails the test.
bool open_and_touch(const std::string& p) {
  try {
    const File f = File::open(p);
    std::size_t sink = 0;
    for (const auto& [key, value] : f.metadata()) {
      sink += key.size() + value.type_description().size();
      if (value.type() == ValueType::STRING) sink += value.as_string().size();
      if (value.is_array() && value.element_type() == ValueType::STRING) {
        for (const std::string& s : value.as_string_array()) sink += s.size();
      }
    }
    for (const TensorInfo& t : f.tensors()) {
      const uint8_t* d = f.tensor_data(t);
      if (t.nbytes > 0) sink += d[0] + d[t.nbytes - 1];
      sink += static_cast<std::size_t>(t.n_elements());
    }
    EXPECT_GE(sink, 0u);
    return true;
  } catch (const npeff::Error&) {
    return false;
  }
}

TEST_F(GgufTest, EveryTruncationThrows) {
  GgufWriter w = rich_writer();
  w.pad_end = false;
  const std::vector<uint8_t> bytes = w.build();
  const File full = File::open(write(bytes, "full.gguf"));
  uint64_t needed = 0;
  for (const TensorInfo& t : full.tensors()) {
    needed = std::max(needed, full.data_offset() + t.offset + t.nbytes);
  }
  ASSERT_EQ(needed, bytes.size());
  const std::string p = path("prefix.gguf");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(p, std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
    EXPECT_FALSE(open_and_touch(p))
        << "a prefix of " << n << " of " << bytes.size() << " bytes opened";
  }
}

TEST_F(GgufTest, EveryHeaderByteMutation) {
  // Each byte before the data section, set to a few interesting values.
  const GgufWriter w = rich_writer();
  const std::vector<uint8_t> bytes = w.build();
  const std::string p = path("mutated.gguf");
  int opened = 0, refused = 0;
  for (std::size_t i = 0; i < w.data_offset(); ++i) {
    for (uint8_t v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      if (bytes[i] == v) continue;
      std::vector<uint8_t> m = bytes;
      m[i] = v;
      write_bytes(p, m);
      (open_and_touch(p) ? opened : refused)++;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(opened, 0);  // e.g. changed characters in strings or values
}

TEST_F(GgufTest, RandomByteFlips) {
  uint32_t seed = std::random_device{}();
  if (const char* s = std::getenv("NPEFF_GGUF_FUZZ_SEED")) seed = std::strtoul(s, nullptr, 10);
  std::cout << "[ GGUF fuzz ] seed " << seed << " (rerun with NPEFF_GGUF_FUZZ_SEED=" << seed << ")"
            << std::endl;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const GgufWriter w = rich_writer();
  const std::vector<uint8_t> bytes = w.build();
  const std::string p = path("flipped.gguf");
  std::uniform_int_distribution<std::size_t> header_pos(0, w.data_offset() - 1);
  std::uniform_int_distribution<std::size_t> any_pos(0, bytes.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255), flips(1, 4), coin(0, 3);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> m = bytes;
    const int n = flips(rng);
    for (int j = 0; j < n; ++j) {
      // Mostly the header, metadata and tensor infos: that is where the checks are.
      const std::size_t at = coin(rng) ? header_pos(rng) : any_pos(rng);
      m[at] = coin(rng) ? static_cast<uint8_t>(byte(rng)) : static_cast<uint8_t>(m[at] ^ 0x80);
    }
    if (coin(rng) == 0) m.resize(any_pos(rng));
    write_bytes(p, m);
    open_and_touch(p);
  }
}

}  // namespace
