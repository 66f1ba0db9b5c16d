#!/usr/bin/env bash
# A build with default options must run on CPUs older than the build machine (no -march=native):
# npeff's own code has no AVX-512 instruction, and the binary runs a small projection under
# QEMU's user-mode emulation of a Haswell CPU (AVX2, no AVX-512), where LibTorch dispatches to
# its AVX2 kernels. Skips (exit 77) when objdump or qemu-x86_64 is missing or the build was
# configured with -DNPEFF_NATIVE=ON. Usage: test_portable_build.sh NPEFF_BINARY CMAKE_CACHE
set -u
npeff=$1 cache=$2
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if grep -q '^NPEFF_NATIVE:BOOL=ON' "$cache"; then
  echo "skip: built with -DNPEFF_NATIVE=ON (optimised for this CPU on purpose)"; exit 77
fi
command -v objdump > /dev/null || { echo "skip: objdump missing (binutils)"; exit 77; }
# AVX-512 instructions name zmm registers or opmask registers k0-k7 ({%k1}). Only the AVX-512
# build of the projection kernels (namespace npeff::projection::cpu::avx512, chosen at run time
# on CPUs that have it) may contain them.
n=$(objdump -d --no-show-raw-insn "$npeff" |
  awk '/^[0-9a-f]+ <.*>:$/ {skip = ($0 ~ /3cpu6avx512/)} !skip && /%zmm[0-9]|\{%k[1-7]\}/' | wc -l)
if [[ $n -eq 0 ]]; then ok "no AVX-512 instruction outside the run-time-dispatched kernels"; else bad "$n AVX-512 instructions in $npeff outside the dispatched kernels"; fi
m=$(objdump -d --no-show-raw-insn "$npeff" | awk '/^[0-9a-f]+ <.*>:$/ {on = ($0 ~ /3cpu6avx512/)} on && /%zmm[0-9]/' | wc -l)
if [[ $m -gt 0 ]]; then ok "the AVX-512 kernels are there ($m zmm instructions)"; else bad "no AVX-512 kernel found: was the avx512 variant built?"; fi
command -v qemu-x86_64 > /dev/null || { finish; echo "skip: qemu-x86_64 missing (tools/install-deps.sh installs qemu-user)"; exit 77; }
q=(qemu-x86_64 -cpu Haswell)
expect 0 "runs on an emulated Haswell (AVX2, no AVX-512)" '^npeff [0-9]' -- "${q[@]}" "$npeff" --version
expect 0 "synth-vectors on Haswell" '' -- "${q[@]}" "$npeff" --threads 1 --log-level warn synth-vectors --rows 2 --input-dim 20000 --seed 1 --out "$work/x.h5"
expect 0 "project on Haswell" '"dim": 64' -- "${q[@]}" "$npeff" --threads 1 --log-level warn project --input "$work/x.h5" --proj-dim 64 --out "$work/p.h5" --json
expect 0 "the same projection natively" '' -- "$npeff" --threads 1 --log-level warn project --input "$work/x.h5" --proj-dim 64 --out "$work/p2.h5"
if command -v h5diff > /dev/null; then
  expect 0 "emulated and native projections are bit-identical" '' -- h5diff "$work/p.h5" "$work/p2.h5" /projected
fi
finish
