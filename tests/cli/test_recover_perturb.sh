#!/usr/bin/env bash
# npeff recover and perturb on a tiny model: compute-pefs -> decompose -> recover -> perturb,
# outputs readable and consistent; refused inputs exit 2 with a message.
# Usage: test_recover_perturb.sh NPEFF_BINARY   (NPEFF_SOURCE_DIR: repository root)
set -u
npeff=$(realpath "$1")
root=${NPEFF_SOURCE_DIR:-$(dirname "$(realpath "$0")")/../..}
tiny=$root/tests/fixtures/models/tiny
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

write_toy_task 80
pefs=("$npeff" compute-pefs -m "$tiny/qwen2_bias" -t "$work/chars.json" --task task.json --proj-dim 512)
expect 0 "compute-pefs" '' -- "${pefs[@]}" -o p.h5
expect 0 "decompose" '' -- "$npeff" decompose --pefs p.h5 -C 6 --h-only-steps 50 --steps 100 -o d.h5
expect 0 "recover --help has examples" 'Examples' -- "$npeff" recover --help
expect 0 "perturb --help has examples" 'Examples' -- "$npeff" perturb --help
expect 0 "recover two components" '"parameters_touched"' -- "$npeff" recover -D d.h5 -p p.h5 --component-ids 0,3 -o r.h5 --json
expect 0 "recovered file" 'npeff.recovered version 1' -- "$npeff" inspect r.h5
expect 0 "recover --random" '"component"' -- "$npeff" recover -D d.h5 -p p.h5 --random 2 --seed 1 --reject-threshold 0 -o r2.h5 --json
expect 0 "perturb" '"geometric_mean_kl_ratio"' -- "$npeff" perturb -r r.h5 -D d.h5 -p p.h5 --magnitude 0.5 --top-examples 4 --baseline 20 -o x.h5 --json
expect 0 "perturbation file" 'npeff.perturbation version 1' -- "$npeff" inspect x.h5
if [[ ! -e x.h5.partial.d ]]; then ok "perturb removed its parts"; else bad "perturb left its parts"; fi
expect 0 "perturb table" 'geometric means' -- "$npeff" perturb -r r.h5 -D d.h5 -p p.h5 --magnitude 0.5 --top-examples 4 --baseline 20 -o x2.h5

# Resumable per component: kill -9 after the first component, rerun, same result.
slow=(--magnitude 0.5 --top-examples 16 --baseline 80 --batch-size 2)
expect 0 "uninterrupted perturb" '' -- "$npeff" --threads 1 perturb -r r.h5 -D d.h5 -p p.h5 "${slow[@]}" -o full.h5
"$npeff" --threads 1 perturb -r r.h5 -D d.h5 -p p.h5 "${slow[@]}" -o resumed.h5 > /dev/null 2>&1 &
pid=$!
for ((i = 0; i < 400; i++)); do [[ -f resumed.h5.partial.d/component-0.h5 ]] && break; sleep 0.02; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
if [[ -f resumed.h5.partial.d/component-0.h5 && ! -f resumed.h5 ]]; then ok "killed after the first component"; else bad "no partial result after the kill"; fi
expect 2 "perturb with other settings refuses to resume" 'different inputs or settings.*differ in: magnitude' -- "$npeff" --threads 1 perturb -r r.h5 -D d.h5 -p p.h5 --magnitude 0.6 --top-examples 16 --baseline 80 --batch-size 2 -o resumed.h5
expect 0 "rerun finishes" '"reused_components": [1-9]' -- "$npeff" --threads 1 perturb -r r.h5 -D d.h5 -p p.h5 "${slow[@]}" -o resumed.h5 --json
if need h5diff -- "resumed perturb equals the uninterrupted one"; then
  same=1
  for d in kl_ratio norm_ratio kl_top kl_baseline top_example_ids top_kl; do
    h5diff full.h5 resumed.h5 "/$d" "/$d" > /dev/null 2>&1 || { same=0; echo "  /$d differs"; }
  done
  if [[ $same -eq 1 ]]; then ok "resumed perturb equals the uninterrupted one"; else bad "resumed perturb differs"; fi
fi

# recover resumes per component the same way: kill -9 once a component is whole, rerun, same bits.
expect 0 "uninterrupted recover" '' -- "$npeff" --threads 1 recover -D d.h5 -p p.h5 -o rfull.h5
"$npeff" --threads 1 recover -D d.h5 -p p.h5 -o rres.h5 > /dev/null 2>&1 &
pid=$!
for ((i = 0; i < 1000; i++)); do [[ -f rres.h5.partial.d/component-0.h5 ]] && break; sleep 0.01; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
if [[ -f rres.h5.partial.d/component-0.h5 && ! -f rres.h5 ]]; then ok "recover killed after its first component"; else bad "recover left no component after the kill"; fi
expect 2 "recover with other settings refuses to resume" 'different inputs or settings.*differ in: reject_threshold.*delete rres.h5.partial.d' -- "$npeff" --threads 1 recover -D d.h5 -p p.h5 --reject-threshold 0.3 -o rres.h5
expect 0 "recover rerun reuses the finished components" '"reused_components": [1-9]' -- "$npeff" --threads 1 recover -D d.h5 -p p.h5 -o rres.h5 --json
if [[ ! -e rres.h5.partial.d ]]; then ok "recover removed its working folder"; else bad "recover left rres.h5.partial.d"; fi
if need h5diff -- "resumed recover equals the uninterrupted one"; then
  same=1
  for d in components offsets indices values relative_residual norm nnz rejected iterations projected tensor_nnz; do
    h5diff rfull.h5 rres.h5 "/$d" "/$d" > /dev/null 2>&1 || { same=0; echo "  /$d differs"; }
  done
  if [[ $same -eq 1 ]]; then ok "resumed recover equals the uninterrupted one (h5diff)"; else bad "resumed recover differs"; fi
fi

# Refused inputs.
expect 2 "component out of range" "'6' is not a component id in \[0, 6\)" -- "$npeff" recover -D d.h5 -p p.h5 --component-ids 6 -o bad.h5
expect 2 "component id not a number" "'x' is not a component id" -- "$npeff" recover -D d.h5 -p p.h5 --component-ids 1,x -o bad.h5
expect 0 "PEFs with another projection" '' -- "${pefs[@]}" --proj-seed 9 --max-examples 8 -o other.h5
expect 2 "decomposition and PEFs from different projections" 'different projections or models' -- "$npeff" recover -D d.h5 -p other.h5 -o bad.h5
expect 2 "magnitude <= 0" '--magnitude must be positive' -- "$npeff" perturb -r r.h5 -D d.h5 -p p.h5 --magnitude 0 -o bad.h5
expect 2 "perturb with PEFs of another projection" 'do not share one projection' -- "$npeff" perturb -r r.h5 -D d.h5 -p other.h5 -o bad.h5
expect 2 "perturb with another model" 'a different model' -- "$npeff" perturb -r r.h5 -D d.h5 -p p.h5 -m "$tiny/llama_tied" -o bad.h5
if [[ ! -e bad.h5 ]]; then ok "no output from refused runs"; else bad "a refused run left bad.h5"; fi
finish
