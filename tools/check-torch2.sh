#!/usr/bin/env bash
# Builds npeff against pip's LibTorch 2.x (what GPU users build against; CUDA-enabled wheel) in
# a virtualenv, and runs the test suite with it. Run whenever tensor code changes.
# Usage: tools/check-torch2.sh [TORCH_VERSION=2.9.1]
# Needs network access to PyPI the first time (~3 GB of wheels); the venv is kept in .venv-torch2.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-2.9.1}
venv=.venv-torch2
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q "torch==$version"
fi
prefix=$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
echo "check-torch2: LibTorch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') at $prefix"
# pip's CUDA wheels need the CUDA runtime libraries of the nvidia-* wheels at link and run time.
nvlibs=$(find "$venv" -path '*/nvidia/*/lib' -type d | paste -sd: -)
export LD_LIBRARY_PATH=${nvlibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cmake -S . -B build-torch2 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DNPEFF_BUILD_BENCH=OFF
cmake --build build-torch2 -j "$(nproc)"
ctest --test-dir build-torch2 --output-on-failure -j "$(nproc)"
echo "check-torch2: OK (torch $version)"
