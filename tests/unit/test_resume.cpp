// io::ResumeDir (docs/formats.md, "Resuming"): settings fingerprint, whole pieces, refusal of
// other settings, removal; and the stages built on it that resume inside the library (SAE
// checkpoints, k-means restarts) continuing bit for bit after an interruption.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "npeff/analysis/kmeans.h"
#include "npeff/analysis/sae.h"
#include "npeff/core/error.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/resume.h"

namespace {

namespace fs = std::filesystem;
using npeff::io::ResumeDir;

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("npeff_resume_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    out_ = (dir_ / "out.h5").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void write_piece(ResumeDir& r, const std::string& name, double value) {
    npeff::io::File f = r.create(name);
    f.root().set_attr("value", value);
    f.commit();
  }
  static double read_piece(const ResumeDir& r, const std::string& name) {
    return r.open(name).root().attr_double("value");
  }

  fs::path dir_;
  std::string out_;
  const nlohmann::json settings_ = {{"seed", 1}, {"steps", 10}, {"input", {{"size", 5}}}};
};

TEST_F(ResumeTest, FreshRunCreatesNothingUntilAPieceIsWritten) {
  ResumeDir r(out_, settings_);
  EXPECT_FALSE(r.resumed());
  EXPECT_EQ(r.dir(), out_ + ".partial.d");
  EXPECT_FALSE(fs::exists(r.dir())) << "a run refused later must not leave a folder";
  EXPECT_FALSE(r.has("a.h5"));
  write_piece(r, "a.h5", 1.5);
  EXPECT_TRUE(r.has("a.h5"));
  std::ifstream in(r.path("settings.json"));
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, settings_.dump()) << "settings.json holds the canonical JSON";
  EXPECT_EQ(text, npeff::io::canonical_json(settings_));
}

TEST_F(ResumeTest, SameSettingsResumeWithThePieces) {
  {
    ResumeDir r(out_, settings_);
    write_piece(r, "b.h5", 2.0);
    write_piece(r, "a.h5", 1.0);
  }
  // Keys in another order are the same settings (canonical JSON sorts them).
  const nlohmann::json same =
      nlohmann::json::parse(R"({"steps": 10, "input": {"size": 5}, "seed": 1})");
  ResumeDir r(out_, same);
  EXPECT_TRUE(r.resumed());
  EXPECT_EQ(r.pieces(), (std::vector<std::string>{"a.h5", "b.h5"}));
  EXPECT_DOUBLE_EQ(read_piece(r, "a.h5"), 1.0);
  EXPECT_DOUBLE_EQ(read_piece(r, "b.h5"), 2.0);
}

TEST_F(ResumeTest, OtherSettingsAreRefusedNamingBothFingerprints) {
  {
    ResumeDir r(out_, settings_);
    write_piece(r, "a.h5", 1.0);
  }
  nlohmann::json other = settings_;
  other["seed"] = 2;
  try {
    ResumeDir r(out_, other);
    FAIL() << "resuming with another seed was accepted";
  } catch (const npeff::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("different inputs or settings"), std::string::npos) << msg;
    EXPECT_NE(msg.find(npeff::io::fingerprint_id(settings_)), std::string::npos) << msg;
    EXPECT_NE(msg.find(npeff::io::fingerprint_id(other)), std::string::npos) << msg;
    EXPECT_NE(msg.find("differ in: seed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("delete " + out_ + ".partial.d"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Rerun the original command"), std::string::npos) << msg;
  }
  EXPECT_NE(npeff::io::fingerprint_id(settings_), npeff::io::fingerprint_id(other));
  EXPECT_TRUE(fs::exists(out_ + ".partial.d/a.h5")) << "a refused run must not touch the pieces";
}

TEST_F(ResumeTest, UnfinishedPiecesDoNotExist) {
  ResumeDir r(out_, settings_);
  write_piece(r, "a.h5", 1.0);
  {
    npeff::io::File f = r.create("b.h5");  // abandoned without commit(): an error mid-write
    f.root().set_attr("value", 9.0);
  }
  EXPECT_FALSE(r.has("b.h5"));
  // What kill -9 mid-write leaves: the temporary file. It is no piece, and is overwritten.
  std::ofstream(r.path("c.h5.partial")) << "half an HDF5 file";
  ResumeDir again(out_, settings_);
  EXPECT_EQ(again.pieces(), (std::vector<std::string>{"a.h5"}));
  EXPECT_FALSE(again.has("c.h5"));
  write_piece(again, "c.h5", 3.0);
  EXPECT_DOUBLE_EQ(read_piece(again, "c.h5"), 3.0);
}

TEST_F(ResumeTest, WritingAPieceAgainReplacesIt) {
  ResumeDir r(out_, settings_);
  write_piece(r, "checkpoint.h5", 1.0);
  write_piece(r, "checkpoint.h5", 2.0);
  EXPECT_DOUBLE_EQ(read_piece(r, "checkpoint.h5"), 2.0);
  EXPECT_EQ(r.pieces(), (std::vector<std::string>{"checkpoint.h5"}));
}

TEST_F(ResumeTest, FinishRemovesTheFolder) {
  ResumeDir r(out_, settings_);
  write_piece(r, "a.h5", 1.0);
  r.finish();
  EXPECT_FALSE(fs::exists(out_ + ".partial.d"));
  ResumeDir fresh(out_, nlohmann::json{{"seed", 7}});
  EXPECT_FALSE(fresh.resumed());
}

TEST_F(ResumeTest, PiecesWithoutSettingsAreRefused) {
  fs::create_directories(out_ + ".partial.d");
  std::ofstream(out_ + ".partial.d/part-000000.h5") << "from an older npeff";
  EXPECT_THROW(ResumeDir(out_, settings_), npeff::Error);
  // An empty folder (killed right after creating it) is fine.
  fs::remove_all(out_ + ".partial.d");
  fs::create_directories(out_ + ".partial.d");
  EXPECT_NO_THROW(ResumeDir(out_, settings_));
}

TEST_F(ResumeTest, ReaderOnlyProcessesWriteNothing) {
  ResumeDir reader(out_, settings_, /*writer=*/false);
  EXPECT_THROW(reader.create("a.h5"), npeff::InternalError);
  EXPECT_FALSE(fs::exists(reader.dir()));
  ResumeDir writer(out_, settings_);
  write_piece(writer, "a.h5", 1.0);
  ResumeDir reader2(out_, settings_, /*writer=*/false);
  EXPECT_TRUE(reader2.has("a.h5"));
  reader2.finish();
  EXPECT_TRUE(fs::exists(reader2.dir())) << "only the writer removes the folder";
}

TEST_F(ResumeTest, FileFingerprintFollowsContent) {
  const std::string p = (dir_ / "input.bin").string();
  std::ofstream(p) << "abc";
  const nlohmann::json a = npeff::io::file_fingerprint(p);
  EXPECT_EQ(a["size"], 3);
  EXPECT_TRUE(fs::path(a["path"].get<std::string>()).is_absolute());
  std::ofstream(p) << "abcd";
  const nlohmann::json b = npeff::io::file_fingerprint(p);
  EXPECT_NE(a, b);
  // Same size and mtime, other bytes: another input.
  const fs::file_time_type mtime = fs::last_write_time(p);
  std::ofstream(p) << "abce";
  fs::last_write_time(p, mtime);
  EXPECT_NE(npeff::io::file_fingerprint(p), b);
  // The same bytes restaged with a new mtime (a fresh copy, a remounted share): the same input,
  // so a resume continues.
  std::ofstream(p) << "abcd";
  fs::last_write_time(p, mtime + std::chrono::hours(5));
  EXPECT_EQ(npeff::io::file_fingerprint(p), b);
  fs::create_directories(dir_ / "model");
  std::ofstream(dir_ / "model" / "w.bin") << "12345";
  const nlohmann::json folder = npeff::io::file_fingerprint((dir_ / "model").string());
  EXPECT_EQ(folder["size"], 5);
  std::ofstream(dir_ / "model" / "w.bin") << "12346";
  EXPECT_NE(npeff::io::file_fingerprint((dir_ / "model").string()), folder);
  EXPECT_THROW(npeff::io::file_fingerprint((dir_ / "missing").string()), npeff::Error);
}

struct Interrupt : std::runtime_error {
  Interrupt() : std::runtime_error("interrupted") {}
};

TEST_F(ResumeTest, SaeResumesBitForBit) {
  at::manual_seed(0);
  const at::Tensor x = npeff::analysis::normalize_rows(at::randn({50, 12}));
  npeff::analysis::SaeOptions o;
  o.latents = 6;
  o.k = 2;
  o.batch_size = 16;  // 3 batches per epoch, 2 rows left out of each
  o.steps = 20;
  o.record_every = 4;
  o.checkpoint_every = 7;
  const npeff::analysis::SaeTrainResult full = npeff::analysis::train_sae(x, o);
  const nlohmann::json settings = npeff::analysis::sae_resume_settings({}, o);
  {
    ResumeDir r(out_, settings);
    EXPECT_THROW(npeff::analysis::train_sae(
                     x, o,
                     [](std::int64_t step) {
                       if (step == 16) throw Interrupt();
                     },
                     &r),
                 Interrupt);
    EXPECT_TRUE(r.has("checkpoint.h5")) << "checkpoint of step 14";
  }
  ResumeDir r(out_, settings);
  std::int64_t first_step = -1;
  const npeff::analysis::SaeTrainResult resumed = npeff::analysis::train_sae(
      x, o,
      [&](std::int64_t step) {
        if (first_step < 0) first_step = step;
      },
      &r);
  EXPECT_EQ(first_step, 15);
  EXPECT_TRUE(at::equal(full.model.w_enc, resumed.model.w_enc));
  EXPECT_TRUE(at::equal(full.model.w_dec, resumed.model.w_dec));
  EXPECT_TRUE(at::equal(full.model.b_enc, resumed.model.b_enc));
  EXPECT_TRUE(at::equal(full.model.b_dec, resumed.model.b_dec));
  EXPECT_EQ(full.steps, resumed.steps);
  EXPECT_EQ(full.fvu, resumed.fvu);
  EXPECT_EQ(full.final_fvu, resumed.final_fvu);
}

TEST_F(ResumeTest, KMeansRestartsResumeBitForBit) {
  at::manual_seed(1);
  const at::Tensor x = at::randn({80, 10});
  npeff::analysis::KMeansOptions o;
  o.clusters = 5;
  o.restarts = 4;
  o.seed = 3;
  const npeff::analysis::KMeansResult full = npeff::analysis::spherical_kmeans(x, o);
  const nlohmann::json settings = npeff::analysis::kmeans_resume_settings({}, o);
  {
    ResumeDir r(out_, settings);
    EXPECT_THROW(npeff::analysis::spherical_kmeans(
                     x, o,
                     [](const npeff::analysis::KMeansStep& s) {
                       if (s.restart == 2) throw Interrupt();
                     },
                     &r),
                 Interrupt);
    EXPECT_EQ(r.pieces(), (std::vector<std::string>{"restart-0.h5", "restart-1.h5"}));
  }
  ResumeDir r(out_, settings);
  std::int64_t lloyd_steps_of_early_restarts = 0;
  const npeff::analysis::KMeansResult resumed = npeff::analysis::spherical_kmeans(
      x, o,
      [&](const npeff::analysis::KMeansStep& s) {
        if (s.restart < 2 && !s.restart_done) ++lloyd_steps_of_early_restarts;
      },
      &r);
  EXPECT_EQ(lloyd_steps_of_early_restarts, 0) << "restarts 0 and 1 come from their pieces";
  EXPECT_TRUE(at::equal(full.centroids, resumed.centroids));
  EXPECT_TRUE(at::equal(full.assignment, resumed.assignment));
  EXPECT_TRUE(at::equal(full.similarity, resumed.similarity));
  EXPECT_EQ(full.mean_similarity, resumed.mean_similarity);
  EXPECT_EQ(full.history, resumed.history);
  EXPECT_EQ(full.iterations, resumed.iterations);
}

}  // namespace
