// The LibTorch device for --device, checked usable.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace npeff {

/// Parses --device ("cpu" | "cuda" | "cuda:N") and checks that this binary can use it
/// (npeff::Error otherwise, see require_device; also for cuda:N past the visible GPUs). Plain
/// "cuda" under an MPI launcher means GPU (local rank) of the node, so ranks on a node use
/// different GPUs; more ranks on a node than GPUs is an npeff::Error unless NPEFF_SHARE_GPUS=1
/// (then local rank mod GPUs).
c10::Device select_device(const std::string& text);

/// Peak bytes LibTorch's CUDA caching allocator has handed out on `device` since the last
/// reset_peak_device_memory (its allocated-bytes peak: tensors, not the allocator's reserve);
/// -1 for the CPU or a binary without CUDA. For the per-stage memory figures (docs/scaling.md).
std::int64_t peak_device_memory(c10::Device device);
/// Starts a new peak for peak_device_memory; no-op for the CPU.
void reset_peak_device_memory(c10::Device device);

}  // namespace npeff
