#!/usr/bin/env bash
# The README's set-up-and-run command. Installs the Debian packages npeff needs, builds npeff,
# and runs what npeff can do today end to end:
#  1. random "gradients" of a 10M-parameter model, their sparse random projection to d = 4096,
#     the transpose back, and a summary of the file;
#  2. a decomposition of PEFs with a planted ground truth (2,000 examples, 32 components), and
#     the coefficients of the same PEFs refitted on the learned components.
# (Later stages - compute-pefs on a real LM, recover, perturb, tune-report - will extend this into
# the full NPEFF pipeline.)  Usage: tools/demo.sh [OUT_DIR]
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
"$npeff" synth-pefs --examples 2000 --dim 1024 --components 32 --seed 3 --out "$out/planted.h5"
"$npeff" decompose --pefs "$out/planted.h5" --components 32 --h-only-steps 200 --h-only-lr 2e-4 \
  --steps 600 --lr 6e-4 --out "$out/planted.npeff.h5" --json
"$npeff" fit-coeffs --decomposition "$out/planted.npeff.h5" --pefs "$out/planted.h5" \
  --out "$out/planted.coeffs.h5" --json
# A real language model: the stories260K llama2.c checkpoint in ../shared (skipped without it).
stories=../shared/models/stories260K
if [[ -f "$stories/stories260K.bin" ]]; then
  "$npeff" model-info --model "$stories/stories260K.bin"
  "$npeff" tokenize --tokenizer "$stories/tok512.bin" --text "Once upon a time"
  "$npeff" generate --model "$stories/stories260K.bin" --prompt "" --max-new-tokens 60 --greedy
else
  echo "demo: $stories absent; skipping the language-model steps"
fi
echo
echo "demo: wrote $out/grads.h5 (8 x 10M), $out/grads.proj.h5 (8 x 4096), $out/grads.back.h5 (A^T A x),"
echo "      $out/planted.npeff.h5 (decomposition; its relative_loss is printed above), $out/planted.coeffs.h5"
