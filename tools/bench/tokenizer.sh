#!/usr/bin/env bash
# Tokenizer throughput on SST-2 train, one thread: npeff (bench_tokenizer) and, when the fixtures
# virtualenv exists (tools/make-fixtures.sh), HF `tokenizers` on the same texts and tokenizer in
# the same run, with the ratio. Usage: tools/bench/tokenizer.sh [BUILD_DIR] [SHARED_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
shared="${2:-$root/../shared}"
texts="$shared/data/sst2/train.tsv"
[[ -f "$texts" ]] || { echo "tokenizer.sh: $texts not found (../shared absent)" >&2; exit 2; }
bench="$build/tools/bench/bench_tokenizer"
[[ -x "$bench" ]] || { echo "tokenizer.sh: build $bench first (ninja -C $build bench_tokenizer)" >&2; exit 2; }
py="$root/.venv-fixtures/bin/python"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$root/tests/fixtures/tokenizers/smollm2_gguf/vocab.gguf.gz" > "$tmp/smollm2-vocab.gguf"

run() {  # name tokenizer-for-npeff tokenizer-for-peer
  local ours peer
  ours="$(taskset -c 0 "$bench" --tokenizer "$2" --texts "$texts" --json)"
  echo "$1 npeff: $ours"
  if [[ -x "$py" && -n "$3" ]]; then
    peer="$(taskset -c 0 "$py" "$root/tools/bench/hf_tokenizers_peer.py" --tokenizer "$3" --texts "$texts")"
    echo "$1 peer:  $peer"
    python3 - "$ours" "$peer" "$1" <<'PY'
import json, sys
o, p, name = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
ours, cold = o["tokens_per_s"] / 1e6, o["first_pass_tokens_per_s"] / 1e6
single, batch = p["tokens_per_s_single_calls"] / 1e6, p["tokens_per_s_encode_batch"] / 1e6
best = max(single, batch)
print(f"{name}: npeff {ours:.2f} M tok/s (first pass {cold:.2f}); HF {p['peer']} single calls "
      f"{single:.2f}, encode_batch {batch:.2f}; npeff / best HF = {ours / best:.1f}x")
PY
  fi
}
fx="$root/tests/fixtures/tokenizers"
run "bytelevel_gpt2 (tokenizer.json)" "$fx/bytelevel_gpt2/tokenizer.json" "$fx/bytelevel_gpt2/tokenizer.json"
run "bytelevel_llama3 (tokenizer.json)" "$fx/bytelevel_llama3/tokenizer.json" "$fx/bytelevel_llama3/tokenizer.json"
run "spbpe_llama2 (tokenizer.json)" "$fx/spbpe_llama2/tokenizer.json" "$fx/spbpe_llama2/tokenizer.json"
run "smollm2 (GGUF vocabulary)" "$tmp/smollm2-vocab.gguf" "$tmp/smollm2-vocab.gguf"
run "stories260K (llama2.c tok512.bin)" "$shared/models/stories260K/tok512.bin" ""
