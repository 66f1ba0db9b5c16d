#!/usr/bin/env bash
# Paths from anywhere: run from a temporary folder with absolute --task/--config paths, relative
# paths inside task configs and --config files resolve against those files' folders (flags on
# the command line against the working directory); every bad input path of a subcommand is
# named in one error (exit 2); the other command-line test scripts pass from a foreign cwd.
# Usage: test_paths.sh NPEFF_BINARY   (NPEFF_SOURCE_DIR: repository root)
set -u
npeff=$(realpath "$1")
root=$(realpath "${NPEFF_SOURCE_DIR:-$(dirname "$(realpath "$0")")/../..}")
tiny=$root/tests/fixtures/models/tiny
shared=${NPEFF_SHARED_DIR:-$root/../shared}
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
source "$here/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A project laid out like the repository: proj/configs/tasks/toy.json names ../../data/toy.tsv.
mkdir -p "$work/proj/configs/tasks" "$work/proj/data" "$work/cfg/nested" "$work/elsewhere"
cd "$work/proj" && write_toy_task 12 && cd "$work" || exit 1
mv "$work/proj/data.tsv" "$work/proj/data/toy.tsv"
sed 's#"path": "[^"]*"#"path": "../../data/toy.tsv"#' "$work/proj/task.json" > "$work/proj/configs/tasks/toy.json"
rm "$work/proj/task.json"
task=$work/proj/configs/tasks/toy.json
chars=$work/proj/chars.json
cd "$work/elsewhere" || exit 1

# 1. Task configs: data.path against the task file's folder.
expect 0 "predict from another folder, absolute --task" '"examples": 12' -- \
  "$npeff" predict -m "$tiny/qwen2_bias" -t "$chars" --task "$task" --json
expect 0 "compute-pefs from another folder" '"examples": 6' -- \
  "$npeff" compute-pefs -m "$tiny/qwen2_bias" -t "$chars" --task "$task" --proj-dim 32 --max-examples 6 -o p.h5 --json
expect 0 "provenance holds the absolute data path" "$work/proj/data/toy.tsv" -- \
  "$npeff" inspect --json p.h5
expect 0 "--data on the command line resolves against the working directory" '"examples": 3' -- \
  bash -c "head -4 '$work/proj/data/toy.tsv' > mine.tsv && '$npeff' predict -m '$tiny/qwen2_bias' -t '$chars' --task '$task' --data mine.tsv --json"
if [[ -f $shared/data/triviaqa/questions_1000.jsonl && -f $shared/models/stories260K/stories260K.bin ]]; then
  expect 0 "shipped task config (triviaqa) read from another folder" '"examples": 3' -- \
    "$npeff" predict -m "$shared/models/stories260K/stories260K.bin" --task "$root/configs/tasks/triviaqa.json" --max-examples 3 --json
else
  skip "shipped task configs from another folder: ../shared absent ($shared)"
fi
for f in "$root"/configs/tasks/*.json; do
  p=$(sed -n 's/.*"path": *"\([^"]*\)".*/\1/p' "$f")
  if [[ $p == ../../../shared/* ]]; then ok "$(basename "$f") names ../shared relative to configs/tasks/"; else bad "$(basename "$f"): data.path '$p'"; fi
done

# 2. --config: path options against the config file's folder, flags against the cwd.
cat > "$work/cfg/nested/run.json" <<JSON
{"log-level": "warn",
 "compute-pefs": {"task": "../../proj/configs/tasks/toy.json", "model": "$tiny/qwen2_bias",
                  "tokenizer": "../../proj/chars.json", "proj-dim": 32, "max-examples": 4,
                  "out": "from-config.h5"}}
JSON
expect 0 "config paths resolve against the config's folder" "\"output\": \"$work/cfg/nested/from-config.h5\"" -- \
  "$npeff" --config "$work/cfg/nested/run.json" compute-pefs --json
if [[ -f $work/cfg/nested/from-config.h5 && ! -e from-config.h5 ]]; then ok "output written beside the config"; else bad "output not beside the config"; fi
expect 0 "a relative --config path works the same" "$work/cfg/nested/from-config2.h5" -- \
  bash -c "cd '$work' && '$npeff' --config cfg/nested/run.json compute-pefs --out '$work/cfg/nested/from-config2.h5' --json"
expect 0 "an --out flag resolves against the working directory" "\"output\": \"flag.h5\"" -- \
  "$npeff" --config "$work/cfg/nested/run.json" compute-pefs --out flag.h5 --json
if [[ -f flag.h5 ]]; then ok "flag output in the working directory"; else bad "flag output not in the working directory"; fi
echo "{\"compute-pefs\": {\"task\": \"$task\", \"out\": \"$work/abs.h5\"}}" > "$work/cfg/abs.json"
expect 0 "absolute paths in a config stay as they are" "\"output\": \"$work/abs.h5\"" -- \
  "$npeff" --config "$work/cfg/abs.json" compute-pefs -m "$tiny/qwen2_bias" -t "$chars" --proj-dim 32 --max-examples 4 --json
echo '{"inspect": {"file": "~/none.h5"}}' > "$work/cfg/tilde.json"
expect 2 "'~' in a config is not expanded" "$work/cfg/~/none.h5" -- "$npeff" --config "$work/cfg/tilde.json" inspect
expect 0 "decompose for compare" '' -- "$npeff" --log-level warn decompose --pefs p.h5 -C 2 --h-only-steps 5 --steps 5 -o d.h5
cp -r p.h5 p.h5.parts d.h5 "$work/cfg/nested/"  # a compute-pefs output moves with its parts
echo '{"compare": {"tunings": {"decompositions": ["A=d.h5", "B=d.h5"], "pefs": "p.h5", "top-examples": 2}}}' > "$work/cfg/nested/tunings.json"
expect 0 "NAME=PATH values of compare tunings resolve too" '\| B \|' -- \
  bash -c "cd / && '$npeff' --config '$work/cfg/nested/tunings.json' compare tunings"
if command -v jq > /dev/null; then
  for f in "$root"/configs/demo/*.json "$root"/configs/examples/*.json; do
    if jq -e '[.. | objects | to_entries[] | select(.value | type == "string") | .value | select(startswith("/") or test("\\.(h5|json|tsv|gguf)$"))] | length == 0' "$f" > /dev/null; then
      ok "$(basename "$f") holds no path that the new rule would move"
    else
      bad "$(basename "$f") holds paths: check them against its folder"
    fi
  done
  expect 0 "the demo config from another folder" '"examples": 4' -- \
    "$npeff" --config "$root/configs/demo/sst2-smollm2.json" predict -m "$tiny/qwen2_bias" -t "$chars" --task "$task" --max-examples 4 --json
else
  skip "config content checks: jq not installed"
fi

# 3. Every bad input path in one error, before any work.
sed 's#"path": "[^"]*"#"path": "../../data/none.tsv"#' "$task" > "$work/proj/configs/tasks/nodata.json"
expect 2 "bad --model and a missing data file in one error" \
  "2 problems with the inputs:.*" -- \
  "$npeff" compute-pefs -m "$work/no-model" -t "$chars" --task "$work/proj/configs/tasks/nodata.json" --proj-dim 8 -o x.h5
out=$("$npeff" compute-pefs -m "$work/no-model" -t "$chars" --task "$work/proj/configs/tasks/nodata.json" --proj-dim 8 -o x.h5 2>&1)
if grep -q -- "--model: $work/no-model (does not exist)" <<<"$out" &&
   grep -q "data file of --task $work/proj/configs/tasks/nodata.json: $work/proj/data/none.tsv (does not exist)" <<<"$out"; then
  ok "the error names the model and the data file"
else
  bad "the error does not name both: $out"
fi
expect 2 "a missing folder on the way is named" "no folder $work/nowhere" -- \
  "$npeff" predict -m "$tiny/qwen2_bias" -t "$chars" --task "$work/nowhere/t.json"
expect 2 "perturb: three missing inputs" '3 problems with the inputs:' -- \
  "$npeff" perturb -r r.h5 -D d0.h5 -p p0.h5 -o x.h5
expect 2 "decompose: each missing --pefs file" 'a.h5 \(does not exist\)' -- "$npeff" decompose --pefs a.h5 p.h5 -C 2 -o x.h5
expect 2 "tune-report: a folder given as a file" '--decomposition: .* \(a folder, expected a file\)' -- \
  "$npeff" tune-report -D "$work" -p p.h5 -o rep
if [[ ! -e x.h5 && ! -e rep ]]; then ok "refused runs wrote nothing"; else bad "a refused run left output"; fi

# 4. The other command-line checks from a foreign working directory (they cd to their own
# temporary folders and name the repository by absolute paths).
for t in test_cli.sh test_model_cli.sh; do
  args=("$npeff")
  [[ $t == test_cli.sh ]] && args+=("$(dirname "$npeff")/tests/make_test_files")
  if [[ $t == test_cli.sh && ! -x ${args[1]} ]]; then skip "$t from another folder: make_test_files not built"; continue; fi
  log=$(cd "$work/elsewhere" && NPEFF_SOURCE_DIR=$root bash "$here/$t" "${args[@]}" 2>&1)
  rc=$?
  if [[ $rc -eq 0 || $rc -eq 77 ]]; then ok "$t passes from another folder"; else bad "$t fails from another folder"; echo "$log" | grep FAIL; fi
done
finish
