#!/usr/bin/env bash
# Ground-truth benchmark (docs/ground-truth.md): a generated 3-class task whose labels are a
# known vote of planted factors (trigger words, negations; several per example), a small
# Llama-architecture model trained on it by npeff itself (CPU, minutes), then NPEFF, G-NPEFF,
# gradient clustering and a TopK SAE, each scored on how well its components recover the
# planted factors (best top-16 precision and coefficient AUC per factor).
# Usage: tools/bench-factors.sh [OUT_DIR] (env: NPEFF binary, SEED, EXAMPLES, COMPONENTS, STEPS)
# Prints the results table (also OUT_DIR/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/bench-factors}
npeff=${NPEFF:-build/npeff}
seed=${SEED:-0} examples=${EXAMPLES:-3000} C=${COMPONENTS:-32} steps=${STEPS:-1500}
mkdir -p "$out"
run() { echo "== $*" >&2; "$npeff" "$@"; }
[[ -f $out/task/task.json ]] || run synth-task --examples "$examples" --classes 3 --seed "$seed" \
  --label-prefix "" -o "$out/task" > /dev/null
task=$out/task/task.json
[[ -d $out/model ]] || run train --task "$task" --tokenizer "$out/task/tokenizer.json" --hidden 64 \
  --layers 2 --heads 4 --steps "$steps" --batch-size 32 --lr 3e-3 --seed "$seed" -o "$out/model" --json \
  > "$out/train.json"
run predict -m "$out/model" --task "$task" -o "$out/predictions.h5" --json > "$out/predict.json"
common=(-m "$out/model" --task "$task" --params 'model.layers.*,!*norm*' --proj-dim 2048 --batch-size 32)
[[ -f $out/pefs.h5 ]] || run compute-pefs "${common[@]}" --save-activations -o "$out/pefs.h5" > /dev/null
[[ -f $out/grad.h5 ]] || run compute-pefs "${common[@]}" --pef gradient -o "$out/grad.h5" > /dev/null
dec=(--h-only-steps 500 --steps 1500 --drop-zero --seed "$seed")
[[ -f $out/npeff.h5 ]] || run decompose --pefs "$out/pefs.h5" -C "$C" "${dec[@]}" -o "$out/npeff.h5" > /dev/null
[[ -f $out/gnpeff.h5 ]] || run decompose --pefs "$out/grad.h5" -C "$C" "${dec[@]}" -o "$out/gnpeff.h5" > /dev/null
[[ -f $out/gc.h5 ]] || run cluster -p "$out/grad.h5" --clusters "$C" --restarts 4 --seed "$seed" -o "$out/gc.h5" > /dev/null
# k = 4 of C latents (the paper's k = 32 would leave no sparsity at C = 32).
[[ -f $out/sae.h5 ]] || run sae -p "$out/pefs.h5" --latents "$C" --k 4 --steps 3000 --batch-size 1024 \
  --seed "$seed" -o "$out/sae.h5" > /dev/null
{
  echo "| method | factors recovered (top-16 precision >= 0.75) | mean top-16 precision | mean AUC | negation factors recovered |"
  echo "|---|---|---|---|---|"
  for m in npeff:NPEFF gnpeff:G-NPEFF gc:GC sae:SAE; do
    file=${m%%:*} name=${m#*:}
    run score-factors -D "$out/$file.h5" --task-dir "$out/task" --name "$name" --json > "$out/score-$file.json"
    jq -r --arg n "$name" '"| \($n) | \(.recovered) of \(.factors) (\(100 * .recovered_fraction | round)%) | \(.mean_top_precision * 100 | round / 100) | \(.mean_auc * 100 | round / 100) | \([.per_factor[] | select(.factor | startswith("not ")) | select(.top_precision >= 0.75)] | length) of \([.per_factor[] | select(.factor | startswith("not "))] | length) negations |"' "$out/score-$file.json"
  done
  echo
  echo "Model: $(jq -r .model "$out/train.json"); training accuracy $(jq -r '.train_accuracy * 1000 | round / 10' "$out/train.json")%;"
  echo "$(jq -r .examples "$out/predict.json") examples, accuracy $(jq -r '.accuracy * 1000 | round / 10' "$out/predict.json")%; $C components each."
  echo
  echo "Per factor (best top-16 precision / AUC):"
  echo
  echo "| factor | examples | NPEFF | G-NPEFF | GC | SAE |"
  echo "|---|---|---|---|---|---|"
  jq -r -s '[.[0].per_factor, .[1].per_factor, .[2].per_factor, .[3].per_factor] | transpose[] |
    "| \(.[0].factor) | \(.[0].present) | " + (map("\(.top_precision * 100 | round / 100) / \(.auc * 100 | round / 100)") | join(" | ")) + " |"' \
    "$out/score-npeff.json" "$out/score-gnpeff.json" "$out/score-gc.json" "$out/score-sae.json"
} > "$out/results.md"
cat "$out/results.md"
