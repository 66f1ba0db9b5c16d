#!/usr/bin/env python3
"""Peer measurement for tools/bench/bench_tokenizer: HF `tokenizers` (Rust) encoding the same
texts one call at a time on one thread (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false), and
with encode_batch (its fastest path). Prints one JSON line. Run by tools/bench/tokenizer.sh in
the fixtures virtualenv (tools/make-fixtures.sh creates it).

  hf_tokenizers_peer.py --tokenizer tokenizer.json|vocab.gguf --texts train.tsv [--seconds 3]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer  # noqa: E402


def load(path: str) -> Tokenizer:
    if path.endswith(".json"):
        return Tokenizer.from_file(path)
    # A GGUF vocabulary: build the same reference pipeline as the fixtures script.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
    import make_tokenizer_fixtures as fx  # noqa: E402

    return fx.smollm2_tokenizer_from_kv(fx.read_gguf_kv(path)[0])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    tok = load(a.tokenizer)
    with open(a.texts, encoding="utf-8") as f:
        next(f)
        texts = [line.rstrip("\r\n").rsplit("\t", 1)[0] for line in f]

    def run(fn):
        tokens = passes = 0
        start = time.perf_counter()
        while True:
            tokens += fn()
            passes += 1
            elapsed = time.perf_counter() - start
            if elapsed >= a.seconds:
                return tokens / elapsed

    single = run(lambda: sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts))
    batch = run(lambda: sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)))
    import tokenizers

    print(json.dumps({"peer": f"tokenizers {tokenizers.__version__}", "tokenizer": a.tokenizer,
                      "tokens_per_s_single_calls": single, "tokens_per_s_encode_batch": batch}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
