#!/usr/bin/env bash
# The README's set-up-and-run command. Installs the Debian packages npeff needs, builds npeff,
# and runs what npeff can do today end to end: random "gradients" of a 10M-parameter model,
# their sparse random projection to d = 4096, the transpose back, and a summary of each file.
# (Later stages - compute-pefs, decompose, recover, perturb, tune-report - will extend this
# into the full NPEFF pipeline on a real language model.)  Usage: tools/demo.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/demo}
mkdir -p "$out"

tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target npeff

npeff=build/npeff
"$npeff" synth-vectors --rows 8 --dim 10000000 --seed 1 --out "$out/grads.h5"
"$npeff" project --input "$out/grads.h5" --dim 4096 --seed 7 --out "$out/grads.proj.h5" --json
"$npeff" project --input "$out/grads.proj.h5" --transpose --out "$out/grads.back.h5"
"$npeff" inspect "$out/grads.proj.h5"
echo
echo "demo: wrote $out/grads.h5 (8 x 10M), $out/grads.proj.h5 (8 x 4096), $out/grads.back.h5 (A^T A x)"
