#!/usr/bin/env bash
# Every compute stage's subcommand on a device against the same command on the CPU, on a tiny
# model of the repository (tests/fixtures/models/tiny/qwen2_bias) and a generated task:
#   predict, compute-pefs (exact + activations, gradient), decompose, fit-coeffs, recover,
#   perturb, cluster, sae, train.
# Each device stage reads the CPU's inputs (so a difference is that stage's own), and its --json
# summary is compared with the CPU's: a table on stdout and "RESULT {json}" lines. The stages
# differ only by float32 summation order, so the figures agree to ~1e-4 relative; perturb's KL
# ratios and decompose's loss after 150 steps amplify it (bounds below). Exit 1 when a stage
# fails on the device or leaves its bound.
# Usage: tools/gpu-pipeline.sh NPEFF_BINARY [DEVICE=cuda]   (run by tools/gpu-check.sh, phase d;
#        with DEVICE=cpu it checks itself: both runs on the CPU)
set -uo pipefail
npeff=$(realpath "$1")
dev=${2:-cuda}
root=$(cd "$(dirname "$0")/.." && pwd)
tiny=$root/tests/fixtures/models/tiny/qwen2_bias
source "$root/tests/cli/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
write_toy_task 120 > /dev/null

fail=0
# stage NAME ARGS...: runs `npeff --device cpu ARGS --json` and `--device $dev`; outputs take
# the suffix .cpu / .dev (the ARGS' "@OUT@" is replaced), summaries in NAME.cpu.json/.dev.json.
stage() {
  local name=$1
  shift
  local side t0 rc
  for side in cpu dev; do
    local d=cpu
    [[ $side == dev ]] && d=$dev
    local args=("${@//@OUT@/$name.$side}")
    t0=$(date +%s%N)
    "$npeff" --device "$d" "${args[@]}" --json > "$name.$side.json" 2> "$name.$side.log"
    rc=$?
    echo "$((($(date +%s%N) - t0) / 1000000))e-3" > "$name.$side.seconds"
    if [[ $rc != 0 ]]; then
      echo "gpu-pipeline: $name on $d failed (exit $rc):" >&2
      tail -n 5 "$name.$side.log" >&2
      fail=1
      echo '{}' > "$name.$side.json"
    fi
  done
}

common=(-m "$tiny" -t "$work/chars.json" --task task.json)
stage predict predict "${common[@]}" -o @OUT@.h5
stage pefs compute-pefs "${common[@]}" --proj-dim 256 --save-activations -o @OUT@.h5
stage gradients compute-pefs "${common[@]}" --proj-dim 256 --pef gradient -o @OUT@.h5
# Downstream stages read the CPU's files.
stage decompose decompose --pefs pefs.cpu.h5 -C 8 --h-only-steps 50 --steps 150 --drop-zero -o @OUT@.h5
stage fit fit-coeffs --decomposition decompose.cpu.h5 --pefs pefs.cpu.h5 -o @OUT@.h5
stage recover recover -D decompose.cpu.h5 -p pefs.cpu.h5 --component-ids 0,3 -o @OUT@.h5
stage perturb perturb -r recover.cpu.h5 -D decompose.cpu.h5 -p pefs.cpu.h5 --magnitude 0.5 \
  --top-examples 4 --baseline 20 -o @OUT@.h5
stage cluster cluster -p gradients.cpu.h5 --clusters 8 --restarts 2 -o @OUT@.h5
stage sae sae -p pefs.cpu.h5 --latents 8 --k 2 --steps 300 --batch-size 64 -o @OUT@.h5
stage train train --task task.json -t chars.json --hidden 16 --layers 1 --steps 60 -o @OUT@

python3 - "$dev" <<'EOF' || fail=1
import json, math, sys
dev = sys.argv[1]
# (stage, JSON path, relative bound): float32 summation order differs between devices.
checks = [
    ("predict", "accuracy", 1e-6),
    ("predict", "predicted_counts.Positive", 0.05),  # a near-tie may flip
    ("pefs", "examples", 0),
    ("gradients", "examples", 0),
    ("decompose", "relative_loss", 1e-3),
    ("fit", "mean_example_loss", 1e-3),
    ("recover", "components.0.relative_residual", 1e-2),
    ("recover", "components.1.relative_residual", 1e-2),
    ("perturb", "geometric_mean_kl_ratio", 1e-2),
    ("cluster", "mean_similarity", 1e-3),
    ("sae", "final_fvu", 1e-3),
    ("train", "final_batch_loss", 1e-2),  # 60 Adam steps from the same initialisation
]
def get(doc, path):
    for key in path.split("."):
        if isinstance(doc, list):
            key = int(key)
            if key >= len(doc):
                return None
        elif not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc
bad = 0
print(f"| stage | figure | cpu | {dev} | relative difference | bound | cpu s | {dev} s | status |")
print("|---|---|---|---|---|---|---|---|---|")
for stage, path, bound in checks:
    docs = [json.load(open(f"{stage}.{side}.json")) for side in ("cpu", "dev")]
    secs = [float(open(f"{stage}.{side}.seconds").read()) for side in ("cpu", "dev")]
    a, b = (get(d, path) for d in docs)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        rel, status = None, "MISSING"
    else:
        rel = abs(a - b) / max(abs(a), 1e-12)
        status = "pass" if rel <= bound else "FAIL"
    bad += status != "pass"
    fmt = lambda v: "-" if v is None else f"{v:.6g}"
    print(f"| {stage} | {path} | {fmt(a)} | {fmt(b)} | {fmt(rel)} | {bound:g} | {secs[0]:.1f} | "
          f"{secs[1]:.1f} | {status} |")
    print("RESULT " + json.dumps({"bench": "pipeline", "stage": stage, "figure": path, "cpu": a,
                                  "device": b, "device_name": dev, "relative_difference": rel,
                                  "bound": bound, "cpu_seconds": secs[0],
                                  "device_seconds": secs[1], "status": status}))
sys.exit(1 if bad else 0)
EOF
exit $fail
