// Helpers shared by the unit tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "npeff/core/error.h"

namespace npeff::testing {

/// A fresh, empty directory per test (under the system temp dir), removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("npeff_test_" + std::string(info->test_suite_name()) + "_" +
            std::to_string(::getpid()) + "_" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

/// The repository root (NPEFF_SOURCE_DIR, set by ctest), for fixtures under tests/fixtures.
inline std::string source_dir() {
  const char* s = std::getenv("NPEFF_SOURCE_DIR");
  return s ? s : ".";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Runs `fn`, expecting npeff::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected npeff::Error";
  } catch (const Error& e) {
    for (const std::string& part : parts) {
      EXPECT_TRUE(contains(e.what(), part)) << "message: " << e.what() << "\nmissing: " << part;
    }
  }
}

}  // namespace npeff::testing
