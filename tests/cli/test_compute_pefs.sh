#!/usr/bin/env bash
# npeff compute-pefs from the command line on a tiny model: kill -9 mid-run and rerun gives the
# uninterrupted run's datasets bit for bit; --shard 0/2 + 1/2 merged equal the single run; a
# changed config refuses to resume; bad inputs exit 2 with a message.
# Usage: test_compute_pefs.sh NPEFF_BINARY   (NPEFF_SOURCE_DIR: repository root)
set -u
npeff=$(realpath "$1")
root=${NPEFF_SOURCE_DIR:-$(dirname "$(realpath "$0")")/../..}
tiny=$root/tests/fixtures/models/tiny
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

write_char_tokenizer chars.json
n_examples=${NPEFF_TEST_EXAMPLES:-600}
words=(good bad fine dull great awful fun sad nice poor)
{
  echo -e "sentence\tlabel"
  for ((i = 0; i < n_examples; i++)); do
    echo -e "${words[i % 10]} ${words[(i * 7 + 3) % 10]} $((i % 13))\t$((i % 2))"
  done
} > data.tsv
cat > task.json <<JSON
{"name": "toy", "kind": "label-tokens", "labels": ["Negative", "Positive"], "label_prefix": "",
 "template": "Review: {text}\nSentiment:",
 "data": {"format": "tsv", "path": "data.tsv", "fields": {"text": "sentence"}, "label_field": "label",
          "label_names": {"0": "Negative", "1": "Positive"}}}
JSON
run=("$npeff" --threads 1 compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --proj-dim 64 --proj-seed 3 --batch-size 2)

expect 0 "compute-pefs --help has examples" 'Examples' -- "$npeff" compute-pefs --help
expect 0 "uninterrupted run" "\"examples\": $n_examples" -- "${run[@]}" -o full.h5 --json
expect 0 "the file is npeff.pefs" 'npeff.pefs version 1' -- "$npeff" inspect full.h5
same() {  # same FILE_A FILE_B WHAT: every per-example dataset identical (skipped without h5diff)
  need h5diff -- "$3" || return 0
  local d diff=0
  for d in pefs example_ids raw_norms param_norms labels prediction probs prompts; do
    h5diff "$1" "$2" "/$d" "/$d" > /dev/null 2>&1 || { diff=1; echo "  /$d differs"; }
  done
  if [[ $diff -eq 0 ]]; then ok "$3"; else bad "$3"; fi
}

# wait_for_part OUT SECONDS: waits until OUT's first new part exists, then SECONDS more.
wait_for_part() {
  local n0 i
  n0=$(ls "$1.partial.d" 2>/dev/null | grep -c '^part-.*\.h5$')
  for ((i = 0; i < 300; i++)); do
    [[ $(ls "$1.partial.d" 2>/dev/null | grep -c '^part-.*\.h5$') -gt $n0 ]] && break
    sleep 0.05
  done
  sleep "$2"
}

# kill -9 twice at different points, rerunning after each; then the rerun completes.
for delay in 0.3 0.9; do
  "${run[@]}" --flush-every 8 -o resumed.h5 > /dev/null 2>&1 &
  pid=$!
  wait_for_part resumed.h5 $delay
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  if [[ -d resumed.h5.partial.d && ! -f resumed.h5 ]]; then ok "killed mid-run: parts, no output"; else bad "kill after the first part did not leave parts"; fi
done
echo "a part write cut short" > resumed.h5.partial.d/part-000099.h5.partial
# The data file restaged with the same bytes (new inode, new mtime): still the same input.
cp data.tsv restaged.tsv && rm data.tsv && mv restaged.tsv data.tsv && touch -d '+1 hour' data.tsv
# The model folder and tokenizer spelled another way (via .., a trailing '/' as tab completion
# adds, an absolute tokenizer path): the same inputs.
run_respelled=("${run[@]}")
run_respelled[5]="$tiny/../tiny/qwen2_bias/"
run_respelled[7]="$PWD/chars.json"
expect 0 "rerun resumes" 'resuming' -- "${run_respelled[@]}" --flush-every 8 -o resumed.h5
if [[ ! -e resumed.h5.partial.d && -f resumed.h5.parts/part-000000.h5 ]]; then ok "working folder became resumed.h5.parts"; else bad "no resumed.h5.parts/ or a working folder left behind"; fi
if ls resumed.h5.parts | grep -q '\.partial$'; then bad "a cut-short part write was kept in resumed.h5.parts"; else ok "no cut-short part write kept in resumed.h5.parts"; fi
same full.h5 resumed.h5 "killed and resumed run equals the uninterrupted run bit for bit"

# A changed config refuses to resume.
"${run[@]}" -o changed.h5 > /dev/null 2>&1 &
pid=$!
wait_for_part changed.h5 0
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
expect 2 "resume with another projection seed is refused" 'cannot resume .*different inputs or settings' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --proj-dim 64 --proj-seed 4 --batch-size 2 -o changed.h5

# Shards: their union equals the single run.
expect 0 "shard 0/2" '' -- "${run[@]}" --shard 0/2 -o s0.h5
expect 0 "shard 1/2" '' -- "${run[@]}" --shard 1/2 -o s1.h5
expect 0 "merge-pefs" "\"examples\": $n_examples" -- "$npeff" merge-pefs -p s0.h5 s1.h5 -o merged.h5 --json
same full.h5 merged.h5 "union of --shard 0/2 and 1/2 equals the single run"
# Each PEF is written once: /pefs reads from the parts (docs/formats.md, "Part files").
expect 0 "compute-pefs /pefs is virtual over its parts" '/pefs +float32 \[[0-9]+, [0-9]+, 64\] +virtual over [0-9]+ files \(full.h5.parts/part-000000.h5' -- "$npeff" inspect full.h5
expect 0 "merge-pefs /pefs is virtual over the shards' parts" 'virtual over [0-9]+ files \(s0.h5.parts/part-000000.h5' -- "$npeff" inspect merged.h5
mkdir moved && mv full.h5 full.h5.parts moved/
same moved/full.h5 merged.h5 "a file moved with its part folder reads the same"
expect 2 "merge-pefs refuses a shard given twice" 'hold the same PEFs .*give each shard once' -- "$npeff" merge-pefs -p s0.h5 s1.h5 ./s0.h5 -o twice.h5
expect 2 "merge-pefs refuses a shard the other input already reads" 'merged.h5 hold the same PEFs' -- "$npeff" merge-pefs --copy -p merged.h5 s1.h5 -o twice.h5
expect 0 "merge-pefs --copy writes a self-contained file" '"self_contained": true' -- "$npeff" merge-pefs --copy -p merged.h5 -o copy.h5 --json
mv s0.h5.parts s0-parts-elsewhere
expect 2 "a missing part file is named" 'merged.h5: its /pefs reads rows \[0, [0-9]+\) from s0.h5.parts/part-000000.h5, which is missing.*merge-pefs --copy' -- "$npeff" decompose --pefs merged.h5 -C 2 --steps 1 -o never.h5
same copy.h5 moved/full.h5 "the --copy file needs no part folder"
expect 2 "inspect refuses a file whose part is missing" 'which is missing' -- "$npeff" inspect merged.h5
mkdir adir
expect 2 "an --out that is a folder is refused before any work" 'adir: is a directory' -- "${run[@]}" -o adir
mv s0-parts-elsewhere s0.h5.parts
# Killed after the folder was moved and before OUT was committed (the state: the folder marked
# "finishing", no OUT): the rerun only writes OUT.
touch resumed.h5.parts/finishing && rm resumed.h5
expect 0 "a rerun after a kill between moving the parts and writing OUT finishes without recomputing" 'resuming .* after '"$n_examples"' of '"$n_examples" -- "${run[@]}" --flush-every 8 -o resumed.h5
same moved/full.h5 resumed.h5 "and its result equals the uninterrupted run"
if [[ ! -e resumed.h5.parts/finishing ]]; then ok "the finishing mark goes once OUT is written"; else bad "resumed.h5.parts/finishing left behind"; fi
# 75 parts read under a limit of 24 open files: readers open one part at a time (through the
# virtual dataset HDF5 keeps each part it read open, and one it cannot open reads as NaN).
expect 0 "75 parts read under ulimit -n 24" '' -- bash -c "ulimit -n 24 && '$npeff' decompose --pefs resumed.h5 -C 2 --h-only-steps 2 --steps 2 -o many.h5"
expect 0 "other projection seed" '' -- "$npeff" --threads 1 compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --proj-dim 64 --proj-seed 4 --max-examples 4 -o seed4.h5
expect 2 "merge of differently projected files" 'projected with' -- "$npeff" merge-pefs -p s0.h5 seed4.h5 -o bad.h5

# Kinds and options that change the layout.
expect 0 "--pef gradient, float16, activations" '"rank": 1' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --proj-dim 32 --pef gradient --storage-dtype fp16 --save-activations --max-examples 6 -o g.h5 --json
# Both halves must hold: /pefs stored as float16 and /activations present (float32 [m, hidden],
# docs/formats.md; the tiny model's hidden size is 32).
g_datasets=$("$npeff" inspect g.h5 2>&1)
g_pefs=$(grep -cE '^ +/pefs +float16 \[6, 1, 32\] ' <<<"$g_datasets")
g_act=$(grep -cE '^ +/activations +float32 \[6, 32\] ' <<<"$g_datasets")
if [[ $g_pefs -eq 1 && $g_act -eq 1 ]]; then
  ok "float16 PEFs and activations stored"
else
  bad "float16 PEFs and activations stored: /pefs float16 [6, 1, 32] found $g_pefs, /activations float32 [6, 32] found $g_act"
  grep -E '^ +/(pefs|activations) ' <<<"$g_datasets"
fi
expect 0 "--pef expectation --eps 2" '"rank": 2' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --proj-dim 32 --pef expectation --eps 2 --max-examples 4 -o e.h5 --json
expect 0 "decompose reads compute-pefs output" '' -- "$npeff" decompose --pefs moved/full.h5 -C 4 --h-only-steps 5 --steps 5 -o dec.h5

# Bad inputs.
expect 2 "--shard malformed" '--shard must be I/N' -- "${run[@]}" --shard 2/2 -o x.h5
expect 2 "--proj-dim missing" 'proj-dim' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json -o x.h5
sed 's/"label-tokens"/"vocab"/; s/"label_field": "label",//; s/, *"label_names": {[^}]*}//' task.json > vocab.json
expect 2 "exact PEFs over a vocabulary need --top-classes" 'give --top-classes' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task vocab.json --proj-dim 8 -o x.h5
sed 's/{text}/{sentence}/' task.json > notext.json
expect 2 "template placeholder without a field" '\{sentence\}' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task notext.json --proj-dim 8 -o x.h5
printf 'sentence\tlabel\n' > empty.tsv
expect 2 "empty dataset" 'no examples' -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --data empty.tsv --proj-dim 8 -o x.h5
printf 'sentence\tlabel\nfine\t7\n' > badlabel.tsv
expect 2 "label outside the label set" "label '7'" -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --data badlabel.tsv --proj-dim 8 -o x.h5
printf 'text\tlabel\nfine\t1\n' > nofield.tsv
expect 2 "missing text field" "missing field 'sentence'" -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --data nofield.tsv --proj-dim 8 -o x.h5
sed 's/"Negative", "Positive"\]/"Nope", "Nice"]/; s/"0": "Negative", "1": "Positive"/"0": "Nope", "1": "Nice"/' task.json > collide.json
expect 2 "label first-token collision" "'Nope' and 'Nice' start with the same token" -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task collide.json --proj-dim 8 -o x.h5
printf 'sentence\tlabel\n%s\t1\n' "$(printf 'a%.0s' {1..80})" > long.tsv
expect 2 "example longer than the context" "more than the model's context" -- "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --data long.tsv --proj-dim 8 -o x.h5
if [[ ! -e x.h5 ]]; then ok "no output written by failed runs"; else bad "a failed run left x.h5"; fi
finish
