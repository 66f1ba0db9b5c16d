#!/usr/bin/env bash
# docs/troubleshooting.md quotes only messages npeff prints: triggers each case of its "Messages"
# table on a tiny model and checks that every quoted message (… = anything) matches the output.
# Usage: test_troubleshooting.sh NPEFF_BINARY MAKE_TEST_FILES   (NPEFF_SOURCE_DIR: repository root)
set -u
npeff=$(realpath "$1")
make_files=$(realpath "$2")
root=$(realpath "${NPEFF_SOURCE_DIR:-$(dirname "$(realpath "$0")")/../..}")
tiny=$root/tests/fixtures/models/tiny
source "$root/tests/cli/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
out=$work/outputs.txt
run() { "$@" >> "$out" 2>&1; }  # every message any case prints, in one file
write_toy_task 40
"$make_files" . > /dev/null
q=(--log-level warn)
pefs=("$npeff" "${q[@]}" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --proj-dim 64)
"${pefs[@]}" -o p.h5 > /dev/null && "${pefs[@]}" --proj-seed 3 -o p3.h5 > /dev/null &&
  "$npeff" "${q[@]}" decompose --pefs p.h5 -C 4 --h-only-steps 10 --steps 20 --drop-zero -o d.h5 > /dev/null ||
  { bad "setup (compute-pefs, decompose)"; finish; exit; }
run "$npeff" compute-pefs -m /nope -t chars.json --task missing.json --proj-dim 8 -o x.h5
run "$npeff" inspect wrong_version.h5
run "$npeff" tune-report -D p.h5 -p p.h5 -o r
run "$npeff" inspect no_schema.h5
run "$npeff" inspect unknown_schema.h5
run "$npeff" recover -D d.h5 -p p3.h5 --component-ids 0 -o r.h5
sed 's/"Negative", "Positive"/"Negative", "Neutral"/; s/"1": "Positive"/"1": "Neutral"/' task.json > collide.json
run "$npeff" predict -m "$tiny/qwen2_bias" -t chars.json --task collide.json -o pr.h5
long=$(printf '{text} %.0s' {1..30})
sed "s/\"template\": \"Review: {text}/\"template\": \"Review: $long/" task.json > long.json
run "$npeff" predict -m "$tiny/qwen2_bias" -t chars.json --task long.json -o pr.h5
run "$npeff" sae -p p.h5 --latents 4 --k 2 -o s.h5
mkdir elsewhere && cp p.h5 elsewhere/  # without p.h5.parts/
run "$npeff" decompose --pefs elsewhere/p.h5 -C 2 --steps 1 -o x.h5
"${pefs[@]}" --max-examples 8 -o s8.h5 > /dev/null && "$npeff" "${q[@]}" merge-pefs -p s8.h5 -o m8.h5 > /dev/null &&
  "${pefs[@]}" --max-examples 8 --proj-seed 5 -o s8.h5 > /dev/null  # replaces s8.h5.parts
run "$npeff" decompose --pefs m8.h5 -C 2 --steps 1 -o x.h5
"$npeff" "${q[@]}" compute-pefs -m "$tiny/qwen2_bias" -t chars.json --task task.json --proj-dim 64 --max-examples 10 -o p10.h5 > /dev/null
"$npeff" "${q[@]}" decompose --pefs p10.h5 -C 2 --h-only-steps 5 --steps 5 --drop-zero -o d10.h5 > /dev/null
run "$npeff" tune-report -D d.h5 -p p10.h5 -o r2
echo x > notdir
run "$npeff" tune-report -D d.h5 -p p.h5 -o notdir
run "$npeff" decompose --pefs bad_pefs.h5 -C 2 -o x.h5
run "$npeff" decompose --pefs p.h5 -C 4 --h-only-steps 10 --steps 100 --lr 1e30 --drop-zero -o dv.h5
run "$npeff" project --input p.h5 --dataset pefs --dim 8 -o pp.h5 --help
# An HDF5 file in a newer format: a superblock version this HDF5 does not read (generated here)
# and a dataset h5py wrote with libver='latest' (tests/fixtures/hdf5/newer_format.h5).
cp p.h5 sb4.h5 && printf '\x04' | dd of=sb4.h5 bs=1 seek=8 conv=notrunc status=none
run "$npeff" inspect sb4.h5
run "$npeff" inspect "$root/tests/fixtures/hdf5/newer_format.h5"
# A model directory of an architecture npeff does not run, and a GGUF of one.
mkdir -p bloom && echo '{"model_type": "bloom", "vocab_size": 8}' > bloom/config.json
run "$npeff" model-info -m bloom
# A Git LFS pointer saved in place of a model, and a llama2.c export.py --version 2 file.
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%064d\nsize 538947840\n' 0 > lfs.gguf
run "$npeff" model-info -m lfs.gguf
{ printf '24ka\x02\x00\x00\x00'; head -c 248 /dev/zero; } > q80.bin
run "$npeff" model-info -m q80.bin
cuda_linked=1
"$npeff" --version | grep -q "CUDA kernels not linked" && cuda_linked=0
((cuda_linked)) || run "$npeff" --device cuda decompose --pefs p.h5 -C 2 -o x.h5

# Every quoted message of the table must match the outputs.
table=$(awk '/^## Messages/ {on = 1; next} /^## / {on = 0} on && /^\| `/' "$root/docs/troubleshooting.md")
[[ $(wc -l <<<"$table") -ge 10 ]] || bad "the Messages table of docs/troubleshooting.md has fewer than 10 rows"
while IFS= read -r row; do
  msg=$(sed -E 's/^\| `([^`]*)`.*/\1/' <<<"$row")
  if [[ $msg == --device\ cuda:* && $cuda_linked -eq 1 ]]; then continue; fi  # a CUDA build cannot print it
  # The quote as a fixed string, with … matching anything.
  regex=$(sed -E 's/[][\.*^$+?(){}|\/]/\\&/g; s/…/.*/g' <<<"$msg")
  if grep -Eq -- "$regex" "$out"; then ok "quoted as printed: $msg"; else bad "never printed: $msg"; fi
done <<<"$table"
finish
