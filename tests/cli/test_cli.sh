#!/usr/bin/env bash
# Command-line behaviour of the npeff binary: help, exit codes (0 ok, 2 bad input), messages,
# --config handling, and inspect on broken files. Usage: test_cli.sh NPEFF_BINARY MAKE_TEST_FILES
# Prints one line per check and a closing "N passed, M failed" line.
set -u
npeff=$1
make_files=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

expect 0 "help lists the subcommands" 'inspect.*' -- "$npeff" --help
expect 0 "help lists project" 'project' -- "$npeff" --help
expect 0 "help lists synth-vectors" 'synth-vectors' -- "$npeff" --help
expect 0 "version" '^npeff [0-9]+\.[0-9]+\.[0-9]+' -- "$npeff" --version
expect 0 "subcommand help has examples" 'Examples' -- "$npeff" project --help
# --threads 0 (the default) is the CPUs this process may run on, not the node's (issue 17).
sv=(--log-level debug synth-vectors --rows 1 --input-dim 10 --out "$work/threads.h5")
expect 0 "SLURM_CPUS_PER_TASK sets the default thread count" 'threads: 3 \(the CPUs' -- env SLURM_CPUS_PER_TASK=3 "$npeff" "${sv[@]}"
expect 0 "taskset -c 0 gives one thread" 'threads: 1 \(the CPUs' -- env -u SLURM_CPUS_PER_TASK taskset -c 0 "$npeff" "${sv[@]}"
expect 0 "--threads 2 is taken as given" 'threads: 2$' -- env SLURM_CPUS_PER_TASK=3 "$npeff" --threads 2 "${sv[@]}"
expect 2 "no subcommand" 'subcommand' -- "$npeff"
expect 2 "unknown subcommand" 'error' -- "$npeff" frobnicate
expect 2 "missing required flag" 'input' -- "$npeff" project --proj-dim 8 --out "$work/x"
expect 2 "bad --threads" 'threads' -- "$npeff" --threads -3 inspect "$work/none.h5"
expect 2 "bad --device" 'device' -- "$npeff" --device tpu inspect "$work/none.h5"

# A small pipeline: synth -> project -> inspect -> transpose.
expect 0 "synth-vectors" '' -- "$npeff" --log-level warn synth-vectors --rows 3 --input-dim 5000 --seed 1 --out "$work/x.h5"
expect 0 "project" "$work/p.h5" -- "$npeff" --log-level warn project --input "$work/x.h5" --proj-dim 256 --proj-seed 5 --out "$work/p.h5"
expect 0 "project --json" '"input_elements_per_second"' -- "$npeff" --log-level warn project --input "$work/x.h5" --proj-dim 256 --proj-seed 5 --out "$work/p2.h5" --json
expect 0 "inspect text" 'npeff.projected' -- "$npeff" inspect "$work/p.h5"
expect 0 "inspect json" '"schema": "npeff.projected"' -- "$npeff" inspect --json "$work/p.h5"
expect 0 "inspect shows provenance" 'command_line' -- "$npeff" inspect --json "$work/p.h5"
expect 0 "transpose" '' -- "$npeff" --log-level warn project --input "$work/p.h5" --transpose --out "$work/b.h5"
expect 0 "transpose output is npeff.vectors [3, 5000]" '5000' -- "$npeff" inspect --json "$work/b.h5"
expect 2 "transpose with a conflicting seed" 'seed' -- "$npeff" project --input "$work/p.h5" --transpose --proj-seed 6 --out "$work/c.h5"
expect 2 "projection dimension 0" 'dimension' -- "$npeff" project --input "$work/x.h5" --proj-dim 0 --out "$work/z.h5"
expect 2 "missing dataset" "no dataset" -- "$npeff" project --input "$work/x.h5" --dataset nope --proj-dim 8 --out "$work/z.h5"
if [[ -e "$work/z.h5" || -n $(ls "$work" | grep -E 'z\.h5\.') ]]; then
  echo "FAIL: a failed run left a file behind"; failed=$((failed + 1))
else
  echo "ok: failed runs leave nothing at the final path"; passed=$((passed + 1))
fi
if "$npeff" --version | grep -q "CUDA kernels not linked"; then
  expect 2 "--device cuda on a CPU-only build" 'without CUDA' -- "$npeff" --device cuda project --input "$work/x.h5" --proj-dim 8 --out "$work/z.h5"
fi

# --config: values from JSON, flags win, bad files refused.
echo '{"log-level": "warn", "project": {"proj-dim": 128, "proj-seed": 5}}' >"$work/cfg.json"
expect 0 "config file supplies options" '"dim": 128' -- "$npeff" --config "$work/cfg.json" project --input "$work/x.h5" --out "$work/q.h5" --json
expect 0 "flags override the config" '"dim": 64' -- "$npeff" --config "$work/cfg.json" project --input "$work/x.h5" --out "$work/q.h5" --proj-dim 64 --json
echo '{"proj-dim": 32}' >"$work/flat.json"
expect 0 "flat config keys apply to the subcommand" '"dim": 32' -- "$npeff" --log-level warn --config "$work/flat.json" project --input "$work/x.h5" --out "$work/q.h5" --json
echo '{"project": {"dim": 16}}' >"$work/old.json"
expect 0 "deprecated config key works and warns" "'--dim' of project is deprecated; use '--proj-dim'" -- "$npeff" --log-level warn --config "$work/old.json" project --input "$work/x.h5" --out "$work/q.h5" --json
expect 0 "deprecated config key has its effect" '"dim": 16' -- "$npeff" --log-level warn --config "$work/old.json" project --input "$work/x.h5" --out "$work/q.h5" --json

# Deprecated flag spellings (docs/cli-vocabulary.md): still work, with a warning naming the new one.
expect 0 "deprecated --dim works and warns" "'--dim' of project is deprecated; use '--proj-dim'" -- "$npeff" --log-level warn project --input "$work/x.h5" --dim 24 --seed 5 --out "$work/q.h5" --json
expect 0 "deprecated --dim=N form" '"dim": 24' -- "$npeff" --log-level warn project --input "$work/x.h5" --dim=24 --out "$work/q.h5" --json
expect 0 "deprecated merge-pefs -i" "'-i' of merge-pefs is deprecated; use '-p'" -- "$npeff" merge-pefs -i "$work/none.h5" -o "$work/m.h5" --help
expect 2 "an old spelling of another subcommand is not rewritten" 'dim' -- "$npeff" decompose --pefs "$work/x.h5" -C 2 --dim 3 --out "$work/d.h5"
if "$npeff" --version | grep -q "CUDA kernels not linked"; then
  expect 2 "--device cuda:N is parsed, then refused by a CPU-only build" 'without CUDA' -- "$npeff" --device cuda:1 inspect "$work/p.h5"
fi
expect 2 "--device cuda:x is not a device" "not a device" -- "$npeff" --device cuda:x inspect "$work/p.h5"
echo '{"project": {"dimm": 5}}' >"$work/typo.json"
expect 2 "unknown config key" 'dimm' -- "$npeff" --config "$work/typo.json" project --input "$work/x.h5" --out "$work/q.h5" --proj-dim 8
echo '{"project": ' >"$work/broken.json"
expect 2 "malformed config JSON" 'JSON' -- "$npeff" --config "$work/broken.json" project --input "$work/x.h5" --out "$work/q.h5"
expect 2 "missing config file" '' -- "$npeff" --config "$work/none.json" inspect "$work/p.h5"

# inspect on broken files: clear message, exit 2, no crash.
"$make_files" "$work" || { echo "FAIL: make_test_files"; failed=$((failed + 1)); }
expect 2 "inspect missing file" 'no such file' -- "$npeff" inspect "$work/none.h5"
echo "just text" >"$work/text.h5"
expect 2 "inspect non-HDF5 file" 'not an HDF5 file' -- "$npeff" inspect "$work/text.h5"
size=$(stat -c %s "$work/x.h5")
head -c $((size / 2)) "$work/x.h5" >"$work/half.h5"
expect 2 "inspect truncated file (half)" 'truncated|corrupt' -- "$npeff" inspect "$work/half.h5"
head -c 100 "$work/x.h5" >"$work/tiny.h5"
expect 2 "inspect truncated file (100 bytes)" 'truncated|corrupt|not an HDF5' -- "$npeff" inspect "$work/tiny.h5"
expect 2 "inspect wrong schema version" 'version 99' -- "$npeff" inspect "$work/wrong_version.h5"
expect 2 "inspect unknown schema" 'npeff.nonsense' -- "$npeff" inspect "$work/unknown_schema.h5"
expect 2 "inspect non-npeff HDF5 file" 'not an npeff file' -- "$npeff" inspect "$work/no_schema.h5"
expect 2 "project reads a truncated input" 'truncated|corrupt|read' -- "$npeff" project --input "$work/half.h5" --proj-dim 8 --out "$work/z.h5"

finish
