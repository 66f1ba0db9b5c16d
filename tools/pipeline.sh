#!/usr/bin/env bash
# The whole NPEFF pipeline as a shell chain of ordinary subcommands:
#   predict -> compute-pefs -> decompose -> recover -> perturb -> tune-report
# Each stage takes its inputs by path, prints a JSON summary (--json; .output is the path it
# wrote) and exits non-zero on failure (2: bad input, 1: internal error), which stops the chain.
# A stage whose output exists is skipped, so rerunning after an interruption continues (the
# long stages also resume from their own partial files). Settings come from --config (one JSON
# file with a section per subcommand, e.g. configs/demo/sst2-smollm2.json; relative paths in it
# resolve against its folder); flags override. Paths given here resolve against the working
# directory.
#
# Usage: tools/pipeline.sh --model M --task T.json [--data FILE] [--max-examples N]
#          [--config C.json] [--out DIR] [--npeff BIN] [--threads N] [--name NAME]
# Writes DIR/{predictions,pefs,decomposition,recovered,perturbation}.h5, DIR/report/index.html,
# DIR/summary.md (the table printed at the end) and DIR/stages.jsonl (each stage's summary).
set -euo pipefail
model="" task="" data="" max=-1 config="" out=out/pipeline npeff="" threads=0 name=NPEFF
while (($#)); do
  case $1 in
    --model) model=$2; shift ;;
    --task) task=$2; shift ;;
    --data) data=$2; shift ;;
    --max-examples) max=$2; shift ;;
    --config) config=$2; shift ;;
    --out) out=$2; shift ;;
    --npeff) npeff=$2; shift ;;
    --threads) threads=$2; shift ;;
    --name) name=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pipeline: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $model && -n $task ]] || { echo "pipeline: --model and --task are required" >&2; exit 2; }
command -v jq > /dev/null || { echo "pipeline: needs jq (apt-get install jq)" >&2; exit 2; }
[[ -n $npeff ]] || npeff=$(command -v npeff || echo "$(dirname "$0")/../build/npeff")
mkdir -p "$out"
global=(--threads "$threads")
[[ -n $config ]] && global+=(--config "$config")
select=(--task "$task" --max-examples "$max")
[[ -n $data ]] && select+=(--data "$data")

declare -A seconds
# stage NAME OUTPUT -- npeff args...: runs unless OUTPUT exists; records time and the summary.
stage() {
  local stage_name=$1 output=$2
  shift 3
  if [[ -e $output ]]; then
    echo "== $stage_name: $output exists, skipped" >&2
    seconds[$stage_name]="-"
    return
  fi
  echo "== $stage_name" >&2
  local start=$SECONDS json
  json=$("$npeff" "${global[@]}" "$@" --json)
  seconds[$stage_name]=$((SECONDS - start))
  jq -c --arg stage "$stage_name" '{stage: $stage} + .' <<<"$json" >> "$out/stages.jsonl"
}
stage predict "$out/predictions.h5" -- predict -m "$model" "${select[@]}" -o "$out/predictions.h5"
stage compute-pefs "$out/pefs.h5" -- compute-pefs -m "$model" "${select[@]}" -o "$out/pefs.h5"
stage decompose "$out/decomposition.h5" -- decompose --pefs "$out/pefs.h5" -o "$out/decomposition.h5"
stage recover "$out/recovered.h5" -- recover -D "$out/decomposition.h5" -p "$out/pefs.h5" -o "$out/recovered.h5"
stage perturb "$out/perturbation.h5" -- perturb -r "$out/recovered.h5" -D "$out/decomposition.h5" \
  -p "$out/pefs.h5" -o "$out/perturbation.h5"
rm -rf "$out/report"  # cheap; always reflects the current decomposition
stage tune-report "$out/report/report.json" -- tune-report -D "$out/decomposition.h5" -p "$out/pefs.h5" \
  --name "$name" -o "$out/report"

# The summary table, from the files (so it is complete after a resumed run too).
inspect() { "$npeff" inspect "$1" --json; }
attr() { inspect "$1" | jq -r "$2"; }
report=$out/report/report.json
pct() { awk -v x="$1" 'BEGIN { if (x == "null" || x == "") print "n/a"; else printf "%.1f%%", 100 * x }'; }
num() { awk -v x="$1" 'BEGIN { printf "%.3g", x }'; }
{
  echo "| stage | seconds | result |"
  echo "|---|---|---|"
  echo "| predict | ${seconds[predict]} | accuracy $(pct "$(attr "$out/predictions.h5" '.attributes.accuracy // "null"')") |"
  echo "| compute-pefs | ${seconds[compute-pefs]} | $(attr "$out/pefs.h5" '[.datasets[] | select(.path == "/pefs") | .shape | map(tostring) | join(" x ")][0]') PEFs (examples x rank x d) |"
  echo "| decompose | ${seconds[decompose]} | $(attr "$out/decomposition.h5" '.attributes.components') components, relative loss $(num "$(attr "$out/decomposition.h5" '.attributes.relative_loss')") |"
  echo "| recover | ${seconds[recover]} | $(attr "$out/recovered.h5" '[.datasets[] | select(.path == "/components") | .shape[0]][0]') components recovered in parameter space |"
  echo "| perturb | ${seconds[perturb]} | KL ratio (geometric mean) $(num "$(attr "$out/perturbation.h5" '.attributes.geometric_mean_kl_ratio')"), PEF-norm ratio $(num "$(attr "$out/perturbation.h5" '.attributes.geometric_mean_norm_ratio')") |"
  echo "| tune-report | ${seconds[tune-report]} | prediction-tuned $(pct "$(jq .summary.prediction_fraction "$report")"), label-tuned $(pct "$(jq .summary.label_fraction "$report")"), LnP $(pct "$(jq .summary.lnp_fraction "$report")"); ICL-style classifier accuracy $(pct "$(jq '.icl.accuracy // "null"' "$report")") |"
} > "$out/summary.md"
cat "$out/summary.md"
echo
echo "report: $out/report/index.html"
