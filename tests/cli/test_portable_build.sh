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
# AVX-512 instructions name zmm registers or opmask registers k0-k7 ({%k1}).
n=$(objdump -d --no-show-raw-insn "$npeff" | grep -cE '%zmm[0-9]|\{%k[1-7]\}')
if [[ $n -eq 0 ]]; then ok "no AVX-512 instruction in npeff's own code"; else bad "$n AVX-512 instructions in $npeff"; fi
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
