// GoogleTest entry point shared by every unit test binary: silences HDF5's error printing and
// uses every core, as the npeff binary does.
#include <gtest/gtest.h>

#include "npeff/core/runtime.h"
#include "npeff/io/hdf5.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  npeff::io::silence_hdf5_errors();
  npeff::set_num_threads(0);
  return RUN_ALL_TESTS();
}
