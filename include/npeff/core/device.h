// The LibTorch device for --device, checked usable.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace npeff {

/// Parses --device ("cpu" | "cuda" | "cuda:N") and checks that this binary can use it
/// (npeff::Error otherwise, see require_device). Plain "cuda" under an MPI launcher means the
/// GPU of index (local rank mod GPUs on the node), so ranks on a node use different GPUs.
c10::Device select_device(const std::string& text);

}  // namespace npeff
