#!/usr/bin/env bash
# tune-report, cluster, sae and compare on a tiny model: compute-pefs (exact + activations,
# gradient) -> decompose / cluster / sae -> tune-report (report.json checked, index.html rendered
# in headless Chromium with the network blocked: every component card present, a screenshot
# taken) -> compare; refused inputs exit 2 with a message.
# Usage: test_analysis.sh NPEFF_BINARY   (NPEFF_SOURCE_DIR: repository root)
set -u
npeff=$(realpath "$1")
root=${NPEFF_SOURCE_DIR:-$(dirname "$(realpath "$0")")/../..}
root=$(realpath "$root")
tiny=$root/tests/fixtures/models/tiny
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

write_toy_task 120 ' </script>'
pefs=("$npeff" compute-pefs -m "$tiny/qwen2_bias" -t "$work/chars.json" --task task.json --proj-dim 256)
expect 0 "compute-pefs exact + activations" '' -- "${pefs[@]}" --save-activations -o p.h5
expect 0 "compute-pefs gradient" '' -- "${pefs[@]}" --pef gradient -o g.h5
expect 0 "decompose" '' -- "$npeff" decompose --pefs p.h5 -C 8 --h-only-steps 50 --steps 150 --drop-zero -o d.h5
expect 0 "decompose G-NPEFF" '' -- "$npeff" decompose --pefs g.h5 -C 8 --h-only-steps 50 --steps 150 --drop-zero -o dg.h5
for c in cluster sae tune-report compare; do
  expect 0 "$c --help has examples" 'Examples' -- "$npeff" $c --help
done
expect 0 "cluster" '"mean_similarity"' -- "$npeff" cluster -p g.h5 --clusters 8 --restarts 2 -o gc.h5 --json
expect 0 "cluster file is a decomposition" 'npeff.decomposition version 1' -- "$npeff" inspect gc.h5
expect 0 "cluster logs each restart with an ETA" 'cluster: restart 2/2 (converged|stopped at --max-iterations) after [0-9]+ iterations, mean similarity .* ETA ' -- "$npeff" cluster -p g.h5 --clusters 8 --restarts 2 -o gc2.h5
expect 0 "sae" '"final_fvu"' -- "$npeff" sae -p p.h5 --latents 8 --k 2 --steps 300 --batch-size 64 -o sae.h5 --json
sae_json=$("$npeff" sae -p p.h5 --latents 8 --k 2 --steps 300 --batch-size 64 -o sae.h5 --json 2> /dev/null)
fvu0=$(grep -oE '"initial_fvu": *[0-9.e+-]+' <<<"$sae_json" | grep -oE '[0-9.e+-]+$')
fvu1=$(grep -oE '"final_fvu": *[0-9.e+-]+' <<<"$sae_json" | grep -oE '[0-9.e+-]+$')
if awk -v a="$fvu0" -v b="$fvu1" 'BEGIN { exit !(b < a) }'; then ok "SAE FVU falls ($fvu0 -> $fvu1)"; else bad "SAE FVU did not fall ($fvu0 -> $fvu1)"; fi
# Divergence guard (issue 17): a learning rate far too large stops the SAE trainer and train with
# exit 3, the step and --lr named, and nothing at the output path.
expect 3 "sae with a diverging --lr" 'sae diverged at step [0-9]+: FVU .* with --lr 1e\+30\. Rerun with a smaller --lr' -- "$npeff" sae -p p.h5 --latents 8 --k 2 --steps 50 --batch-size 64 --lr 1e30 -o sae_div.h5
expect 3 "train with a diverging --lr" 'train diverged at step [0-9]+: loss .* with --lr 1e\+30' -- "$npeff" train --task task.json -t chars.json --hidden 16 --layers 1 --steps 60 --lr 1e30 -o model_div
if [[ -e sae_div.h5 || -e model_div ]]; then bad "a diverged run left its output"; else ok "diverged runs left no output"; fi

# sae and cluster resume like compute-pefs, decompose, recover and perturb: start a run, kill -9
# it once a piece is whole in OUT.partial.d/, check that other settings are refused, rerun the
# same command and compare with an uninterrupted run (h5diff of the result datasets).
# kill_at_piece PIECE COMMAND...: runs COMMAND in the background, kill -9 once PIECE exists.
kill_at_piece() {
  local piece=$1 pid i
  shift
  "$@" > /dev/null 2>&1 &
  pid=$!
  for ((i = 0; i < 1000; i++)); do [[ -f $piece ]] && break; sleep 0.01; done
  kill -9 $pid 2> /dev/null
  wait $pid 2> /dev/null
}
# same_datasets A B WHAT DATASET...: h5diff of each dataset (skipped without h5diff).
same_datasets() {
  local a=$1 b=$2 what=$3 d same=1
  shift 3
  need h5diff -- "$what" || return 0
  for d in "$@"; do h5diff "$a" "$b" "$d" "$d" > /dev/null 2>&1 || { same=0; echo "  $d differs"; }; done
  if [[ $same -eq 1 ]]; then ok "$what"; else bad "$what"; fi
}
sae_long=("$npeff" --threads 1 --log-level warn sae -p p.h5 --latents 8 --k 2 --steps 8000 --batch-size 64 --checkpoint-every 500)
expect 0 "uninterrupted sae" '' -- "${sae_long[@]}" -o sae-full.h5
kill_at_piece sae-res.h5.partial.d/checkpoint.h5 "${sae_long[@]}" -o sae-res.h5
if [[ -f sae-res.h5.partial.d/checkpoint.h5 && ! -e sae-res.h5 ]]; then ok "sae killed with a checkpoint and no output"; else bad "sae kill left no checkpoint"; fi
expect 2 "sae with other settings refuses to resume" 'different inputs or settings.*differ in: seed.*delete sae-res.h5.partial.d' -- "${sae_long[@]}" --seed 1 -o sae-res.h5
expect 0 "sae rerun resumes" 'resuming .*checkpoint.h5 at step [1-9]' -- "$npeff" --threads 1 sae -p p.h5 --latents 8 --k 2 --steps 8000 --batch-size 64 --checkpoint-every 500 -o sae-res.h5
if [[ ! -e sae-res.h5.partial.d ]]; then ok "sae removed its working folder"; else bad "sae left sae-res.h5.partial.d"; fi
same_datasets sae-full.h5 sae-res.h5 "resumed sae equals the uninterrupted one (h5diff)" \
  /W /H /example_ids /loss/step /loss/value /sae/w_enc /sae/b_enc /sae/w_dec /sae/b_dec
gc_long=("$npeff" --threads 1 --log-level warn cluster -p g.h5 --clusters 8 --restarts 300)
expect 0 "uninterrupted cluster" '' -- "${gc_long[@]}" -o gc-full.h5
kill_at_piece gc-res.h5.partial.d/restart-0.h5 "${gc_long[@]}" -o gc-res.h5
if [[ -f gc-res.h5.partial.d/restart-0.h5 && ! -e gc-res.h5 ]]; then ok "cluster killed after a restart and no output"; else bad "cluster kill left no restart"; fi
expect 2 "cluster with other settings refuses to resume" 'different inputs or settings.*differ in: seed.*delete gc-res.h5.partial.d' -- "${gc_long[@]}" --seed 1 -o gc-res.h5
expect 0 "cluster rerun reuses the finished restarts" '"resumed_restarts": [1-9]' -- "${gc_long[@]}" -o gc-res.h5 --json
if [[ ! -e gc-res.h5.partial.d ]]; then ok "cluster removed its working folder"; else bad "cluster left gc-res.h5.partial.d"; fi
same_datasets gc-full.h5 gc-res.h5 "resumed cluster equals the uninterrupted one (h5diff)" \
  /W /H /example_ids /loss/step /loss/value
expect 0 "recover takes cluster centroids" '"relative_residual"' -- "$npeff" recover -D gc.h5 -p g.h5 --component-ids 0 -o r.h5 --json
expect 0 "perturb along a cluster centroid" '"geometric_mean_kl_ratio"' -- "$npeff" perturb -r r.h5 -D gc.h5 -p g.h5 --magnitude 0.5 --top-examples 4 --baseline 20 -o x.h5 --json

expect 0 "tune-report NPEFF" '"prediction_tuned"' -- "$npeff" tune-report -D d.h5 -p p.h5 --top-examples 4 -o rep --json
expect 0 "tune-report prints the page" 'rep/index.html' -- "$npeff" tune-report -D d.h5 -p p.h5 --top-examples 4 -o rep
expect 0 "tune-report GC" '"name": "GC"' -- "$npeff" tune-report -D gc.h5 -p g.h5 --top-examples 4 -o rep-gc --json
expect 0 "tune-report SAE" '"name": "SAE"' -- "$npeff" tune-report -D sae.h5 -p p.h5 --top-examples 4 -o rep-sae --json
if [[ -f rep/report.json && -f rep/index.html && ! -e rep.partial.d ]]; then ok "report folder complete"; else bad "report folder incomplete"; fi
if grep -qE '(src|href)="?https?:' rep/index.html; then bad "index.html loads from the network"; else ok "index.html is self-contained"; fi
if [[ $(grep -o '</script>' rep/index.html | wc -l) -ne 2 ]]; then
  bad "a prompt's </script> was not escaped"
else
  ok "prompts cannot end the data script"
fi

# Without Chromium the page-rendering part (an important part: what users see) cannot run:
# the rest still runs, then the script exits 77 (skipped).
if ! command -v chromium > /dev/null && ! command -v chromium-browser > /dev/null; then
  skip "page rendering not tested: Chromium not installed (tools/install-deps.sh installs it)"
else
  "$root/tools/render-report.sh" rep --dom > dom.html
  cards=$(grep -o '<section class="card' dom.html | wc -l)
  if [[ $cards -eq 8 ]]; then ok "Chromium renders all 8 component cards"; else bad "Chromium rendered $cards cards, expected 8"; fi
  for want in "8 of 8 components shown" "Component 7" "npeff tune-report: NPEFF" "prediction-tuned" \
    'class="line-plot"' 'class="bar-plot"' 'class="histogram"' "Review: "; do
    if grep -qF "$want" dom.html; then ok "rendered page shows '$want'"; else bad "rendered page lacks '$want'"; fi
  done
  first=$(grep -o '"prompt": *"[^<]*' rep/report.json | head -1 | sed 's/"prompt": *"//')
  if [[ -n $first ]] && grep -qF "$first" dom.html; then ok "top-example prompts rendered ('$first')"; else bad "prompt '$first' not in the page"; fi
  expect 0 "screenshot" 'shot.png' -- "$root/tools/render-report.sh" rep --screenshot shot.png --size 1200x1600
  if [[ $(head -c 8 shot.png | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a && $(stat -c %s shot.png) -gt 20000 ]]; then
    ok "screenshot is a non-trivial PNG"
  else
    bad "screenshot missing or blank"
  fi
fi

expect 0 "similarity with itself" '^1$' -- "$npeff" compare similarity d.h5 d.h5
expect 0 "similarity json" '"similarity"' -- "$npeff" compare similarity d.h5 gc.h5 --json
a=$("$npeff" compare similarity d.h5 sae.h5) b=$("$npeff" compare similarity sae.h5 d.h5)
if [[ $a == "$b" ]]; then ok "similarity is symmetric ($a)"; else bad "similarity not symmetric: $a vs $b"; fi
expect 0 "decompose coarse" '' -- "$npeff" decompose --pefs p.h5 -C 4 --h-only-steps 50 --steps 150 --drop-zero -o d4.h5
expect 0 "splits" '"preserved_fraction"' -- "$npeff" compare splits --coarse d4.h5 --fine d.h5 -p p.h5 --top-examples 4 --json
expect 0 "tunings table" '\| SAE \|' -- "$npeff" compare tunings NPEFF=d.h5 G-NPEFF=dg.h5 GC=gc.h5 SAE=sae.h5 -p p.h5 --top-examples 4 -o t1.md
if grep -q 'ICL acc' t1.md; then ok "tunings table written with ICL columns"; else bad "no t1.md"; fi
expect 0 "eigen-decay" '"mean"' -- "$npeff" compare eigen-decay -p p.h5 --plot decay.svg -o decay.json --json
if grep -q '<polyline' decay.svg; then ok "eigen-decay plot"; else bad "no eigen-decay plot"; fi

# npeff predict's file (npeff.predictions version 2: /labels and /label_names, as in npeff.pefs)
# carries the same facts as the PEF file.
expect 0 "predict --out" '' -- "$npeff" predict -m "$tiny/qwen2_bias" -t "$work/chars.json" --task task.json -o pred.h5
expect 0 "predictions file is version 2" 'npeff.predictions version 2' -- "$npeff" inspect pred.h5
names=$("$npeff" inspect pred.h5 --json | jq -r '[.datasets[].path] | sort | join(" ")' 2> /dev/null)
if ! need jq -- "predictions dataset names"; then
  :
elif [[ " $names " == *" /labels "* && " $names " == *" /label_names "* && " $names " != *" /label "* ]]; then
  ok "predictions keep /labels and /label_names"
else
  bad "predictions datasets: $names"
fi
expect 0 "tune-report from predict's file" '' -- "$npeff" tune-report -D d.h5 -p pred.h5 -o rep-pred --json
if ! need jq -- "report.json labels of predict's file"; then
  :
elif jq -e '.label_names == ["Negative", "Positive"] and .summary.has_labels and (.components[0].top[0].label | test("^(Negative|Positive)$"))' rep-pred/report.json > /dev/null; then
  ok "tune-report reads labels and names from predict's file"
else
  bad "tune-report on predict's file lost labels or names"
fi

# A vocabulary task (p over the whole vocabulary, as TriviaQA): predictions are token ids, shown
# as text decoded with the tokenizer the PEF file's provenance records.
sed 's/"label-tokens"/"vocab"/; s/"label_field": "label",//' task.json > vocab.json
cp chars.json vchars.json
expect 0 "compute-pefs on a vocabulary task" '' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t "$work/vchars.json" --task vocab.json --proj-dim 64 --pef gradient --max-examples 40 -o v.h5
expect 0 "decompose vocabulary PEFs" '' -- "$npeff" decompose --pefs v.h5 -C 4 --h-only-steps 20 --steps 40 --drop-zero -o dv.h5
expect 0 "tune-report on a vocabulary task" '' -- "$npeff" tune-report -D dv.h5 -p v.h5 -o rep-v
if ! need jq -- "report.json token decoding"; then
  :
elif jq -e --arg tok "$work/vchars.json" '.token_decoding.tokenizer == $tok and .token_decoding.decoded > 0 and .label_names == [] and ([.components[].top[].prediction | select(test("^\".*\" \\(token [0-9]+\\)$"))] | length > 0)' rep-v/report.json > /dev/null; then
  ok "vocabulary predictions decoded ($(jq -r '[.components[].top[].prediction | select(startswith("\""))][0]' rep-v/report.json))"
else
  bad "vocabulary predictions not decoded: $(jq -c '.token_decoding, .components[0].top[0].prediction' rep-v/report.json)"
fi
mv vchars.json vchars.moved.json
expect 0 "tune-report without the recorded tokenizer warns" 'tokenizer is unavailable' -- "$npeff" tune-report -D dv.h5 -p v.h5 -o rep-v2
if ! need jq -- "report.json note without a tokenizer"; then
  :
elif jq -e '(.token_decoding.note | test("tokenizer is unavailable")) and .token_decoding.tokenizer == null and ([.components[].top[].prediction | select(test("^token [0-9]+$") | not)] | length == 0)' rep-v2/report.json > /dev/null; then
  ok "without a tokenizer: \"token N\" and the report says why"
else
  bad "without a tokenizer: $(jq -c '.token_decoding, .components[0].top[0].prediction' rep-v2/report.json)"
fi
expect 0 "tune-report --tokenizer" '' -- "$npeff" tune-report -D dv.h5 -p v.h5 --tokenizer vchars.moved.json -o rep-v3
if ! need jq -- "report.json with --tokenizer"; then
  :
elif jq -e '.token_decoding.tokenizer == "vchars.moved.json" and .token_decoding.decoded > 0' rep-v3/report.json > /dev/null; then
  ok "--tokenizer decodes"
else
  bad "--tokenizer did not decode"
fi
expect 2 "tune-report --tokenizer missing" 'none.json' -- "$npeff" tune-report -D dv.h5 -p v.h5 --tokenizer none.json -o bad

# Refused inputs.
expect 2 "top-k 0" '--top-examples must be >= 1' -- "$npeff" tune-report -D d.h5 -p p.h5 --top-examples 0 -o bad
expect 0 "PEFs of other examples" '' -- "${pefs[@]}" --start 100 --max-examples 8 -o few.h5
expect 2 "examples missing from the PEF file" 'has no such example' -- "$npeff" tune-report -D d.h5 -p few.h5 -o bad
mkdir -p notareport && touch notareport/x
expect 2 "out folder is something else" 'is not an earlier tune-report folder' -- "$npeff" tune-report -D d.h5 -p p.h5 -o notareport
expect 2 "sae without activations" 'rerun compute-pefs with --save-activations' -- "$npeff" sae -p g.h5 --latents 4 -o bad.h5
expect 2 "sae k > latents" '--k must lie in' -- "$npeff" sae -p p.h5 --latents 4 --k 5 -o bad.h5
expect 2 "cluster on rank-2 PEFs" 'one gradient per example' -- "$npeff" cluster -p p.h5 --clusters 4 -o bad.h5
expect 2 "too many clusters" '--clusters must lie in' -- "$npeff" cluster -p g.h5 --clusters 100000 -o bad.h5
expect 2 "tunings spec without NAME=" 'is not NAME=PATH' -- "$npeff" compare tunings d.h5 -p p.h5
expect 2 "similarity of a PEF file" "expected an 'npeff.decomposition' file" -- "$npeff" compare similarity d.h5 p.h5
if ls bad bad.h5 bad.partial.d 2> /dev/null | grep -q .; then bad "a refused run left output"; else ok "refused runs left no output"; fi
finish
