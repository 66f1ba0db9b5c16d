#!/usr/bin/env bash
# Peak memory and step time of `npeff decompose` (issue 17, docs/performance.md "decompose in
# bounded memory"): r = 2, d = 4,096, C = 128 at m = 20k, 40k, 80k planted PEFs (synth-pefs),
#   - in memory, float32 and float16 storage: peak RSS (/usr/bin/time -v) against the bound
#     1.25 x the PEF bytes in the storage dtype + 400 MB;
#   - out of core on the largest file under a memory limit (ulimit -d: heap and anonymous
#     mappings) of 60% of the file's float32 bytes, under which the in-memory run is refused
#     (checked): it must finish, with the in-memory final loss (relative difference printed), and its
#     step time against the in-memory one with the file in the page cache (bound 1.3x).
# Usage: tools/bench/decompose-memory.sh [NPEFF_BINARY] [WORK_DIR]   (needs ~6 GB of disk; ~15 min
# on 2 cores). Prints a Markdown table and RESULT {json} lines.
set -euo pipefail
npeff=$(realpath "${1:-build/npeff}")
work=${2:-/tmp/npeff-decompose-memory}
mkdir -p "$work"
cd "$work"
r=2 d=4096 C=128 steps=3
common=(-C $C --h-only-steps 0 --steps $steps --checkpoint-every 0 --log-every 1 --json)

# run NAME LIMIT_KB ARGS...: npeff decompose under `ulimit -d LIMIT_KB` (0: none); sets rss_mb,
# ms_step, loss.
run() {
  local name=$1 limit=$2
  shift 2
  (
    [[ $limit != 0 ]] && ulimit -d "$limit"
    exec /usr/bin/time -v "$npeff" decompose "$@" "${common[@]}" -o "$name.h5"
  ) > "$name.json" 2> "$name.time"
  rss_mb=$(awk '/Maximum resident/ {printf "%.0f", $NF / 1024}' "$name.time")
  ms_step=$(python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["ms_per_step"])' "$name.json")
  loss=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["final_loss"])' "$name.json")
}

echo "| m | storage | PEF bytes (MB) | peak RSS (MB) | bound (MB) | ms/step | status |"
echo "|---|---|---|---|---|---|---|"
for m in 20000 40000 80000; do
  f=p$((m / 1000))k.h5
  [[ -f $f ]] || "$npeff" synth-pefs --examples $m -d $d -C 64 --max-active $r --noise 0.1 --seed 1 -o "$f" > /dev/null
  for st in fp32 fp16; do
    bytes=$([[ $st == fp32 ]] && echo 4 || echo 2)
    pef_mb=$(python3 -c "print(round($m * $r * $d * $bytes / 2**20))")
    bound=$(python3 -c "print(round(1.25 * $pef_mb + 400 * 1e6 / 2**20))")
    run "mem-$m-$st" 0 --pefs "$f" --storage-dtype $st
    status=$([[ $rss_mb -le $bound ]] && echo pass || echo FAIL)
    echo "| $m | $st | $pef_mb | $rss_mb | $bound | $ms_step | $status |"
    echo "RESULT {\"bench\": \"decompose_memory\", \"m\": $m, \"storage\": \"$st\", \"pef_mb\": $pef_mb, \"rss_mb\": $rss_mb, \"bound_mb\": $bound, \"ms_per_step\": $ms_step}"
    [[ $st == fp32 && $m == 80000 ]] && { mem_loss=$loss; mem_ms=$ms_step; }
  done
done

# Out of core on the largest file, allowed 60% of its float32 bytes.
m=80000
pef_kb=$((m * r * d * 4 / 1024))
limit_kb=$((pef_kb * 6 / 10))
rc=0
(ulimit -d "$limit_kb"; exec "$npeff" decompose --pefs p80k.h5 -C $C --steps 1 --checkpoint-every 0 \
  -o refused.h5) > /dev/null 2> refused.log || rc=$?
if [[ $rc != 2 ]] || ! grep -q 'cannot allocate' refused.log; then
  echo "FAIL: the in-memory run under the limit ended with exit $rc, not the refusal (exit 2," \
    "'cannot allocate'): the out-of-core check would prove nothing" >&2
  exit 1
fi
cat p80k.h5 > /dev/null  # into the page cache
run "ooc-$m" "$limit_kb" --pefs p80k.h5 --out-of-core --block-examples 4096
rel=$(python3 -c "print(abs($loss - $mem_loss) / $mem_loss)")
ratio=$(python3 -c "print(round($ms_step / $mem_ms, 2))")
status=$(python3 -c "print('pass' if $ratio <= 1.3 else 'over the 1.3x bound')")
echo
echo "out of core, m = $m (file $((pef_kb / 1024)) MB of float32), ulimit -d $((limit_kb / 1024)) MB (in memory refused: $(grep -o 'cannot allocate[^:]*' refused.log | head -1)): peak RSS $rss_mb MB, $ms_step ms/step = ${ratio}x in memory ($mem_ms ms); final loss relative difference $rel; step-time bound 1.3x: $status"
echo "RESULT {\"bench\": \"decompose_out_of_core\", \"m\": $m, \"limit_mb\": $((limit_kb / 1024)), \"rss_mb\": $rss_mb, \"ms_per_step\": $ms_step, \"in_memory_ms_per_step\": $mem_ms, \"ratio\": $ratio, \"loss_relative_difference\": $rel, \"status\": \"$status\"}"
