#!/usr/bin/env python3
"""Phase (b) of tools/gpu-check.sh: a random-weight Llama model in the shape of SmolLM2-360M (or a
tiny one, for the rehearsal on CPU), built and saved with transformers, and PyTorch autograd's
logits and per-example gradients of a few prompts, written in the layout of the tiny fixtures
(tests/fixtures/README.md) so that tests/unit/test_backends.cpp (ReferenceModel, with
NPEFF_REFERENCE_DIR=OUT) checks npeff's forward pass and gradient engine against them.

  OUT/config.json, OUT/model.safetensors   save_pretrained, float32, seeded (torch.manual_seed)
  OUT/expected.safetensors  input_ids/attention_mask [B, T] int64 (right-padded), logits [B, T, V]
                            (masked positions 0), targets [B] int64, objective [B] =
                            log_softmax(logits at the last real token)[target], each sequence run
                            ALONE (unpadded); grad.<b>.<param> (full entries, some tensors) and
                            grad_norm.<b>.<param> [1] (every parameter but the embedding) of it
  OUT/expected.json         bounds the C++ side applies, versions, config, timings

Works with transformers 4.4x (torch 1.13, the rehearsal here) and 5.x (the GPU image): the rope
settings are passed in both spellings and checked after construction. Only standard library,
torch, transformers and safetensors; no network (HF_HUB_OFFLINE).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig  # noqa: E402

# SmolLM2-360M's config.json (HuggingFaceTB/SmolLM2-360M): 32 layers x 9.83 M block weights.
SHAPES = {
    "smollm2-360m": dict(vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True),
    # SmolLM2's vocabulary, so the rehearsal runs compute-pefs on SST-2 with its tokenizer too.
    "tiny": dict(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                 tie_word_embeddings=True),
}
LENGTHS = {"smollm2-360m": [12, 9, 5, 1], "tiny": [6, 4, 1]}
# Bounds of npeff vs this reference (max abs / max |ref|; norms: relative). Both sides float32,
# no TF32; the deep model's 32 layers compound summation-order differences (~1e-6 per layer on
# logits), and gradients add the backward pass; norms average the entries' errors out.
BOUNDS = {"smollm2-360m": dict(logits=1e-4, grad=2e-3, grad_norm=1e-3),
          "tiny": dict(logits=1e-5, grad=1e-4, grad_norm=1e-5)}


def make_config(shape: str) -> LlamaConfig:
    spec = dict(SHAPES[shape])
    theta = spec["rope_theta"]
    cfg = LlamaConfig(**spec, hidden_act="silu", attention_bias=False, mlp_bias=False, bos_token_id=1,
                      eos_token_id=2, rope_parameters={"rope_type": "default", "rope_theta": theta})
    got = getattr(cfg, "rope_parameters", None) or {}
    effective = got.get("rope_theta", getattr(cfg, "rope_theta", None))
    if effective != theta:
        raise SystemExit(f"gpu_reference: transformers {transformers.__version__} set rope_theta {effective}, "
                         f"wanted {theta}")
    return cfg


def full_entry_names(names: list[str], layers: int, shape: str) -> set[str]:
    """Tensors whose per-example gradients are stored entry by entry (all of them for the tiny
    model; first and last layer's attention and down projections plus the final norm otherwise,
    ~157 MB at B = 4)."""
    if shape == "tiny":
        return set(names)
    keep = {"model.norm.weight"}
    for i in (0, layers - 1):
        keep |= {f"model.layers.{i}.self_attn.{p}_proj.weight" for p in "qkvo"}
        keep.add(f"model.layers.{i}.mlp.down_proj.weight")
    return keep & set(names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-360m")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # plain float32 products, as npeff's
    torch.backends.cudnn.allow_tf32 = False
    t0 = time.time()
    seconds = {}

    cfg = make_config(args.shape)
    torch.manual_seed(args.seed)
    # Initialise directly on the device where torch supports it (2.x): 362 M normal draws on one
    # CPU thread would take longer than the rest of this script.
    where = dev if hasattr(torch.device, "__enter__") else contextlib.nullcontext()
    with where:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    model = model.float().to(dev).eval()
    seconds["build"] = time.time() - t0
    t = time.time()
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "generation_config.json").unlink(missing_ok=True)
    seconds["save"] = time.time() - t

    lengths = LENGTHS[args.shape]
    B, T, V = len(lengths), max(lengths), cfg.vocab_size
    g = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.zeros(B, T, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(3, V, (n,), generator=g)
        mask[b, :n] = 1
    targets = torch.randint(0, V, (B,), generator=g)

    t = time.time()
    with torch.no_grad():
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev)).logits
        logits = (logits.float() * mask.to(dev).unsqueeze(-1)).cpu()
    seconds["logits"] = time.time() - t

    t = time.time()
    named = [(n, p) for n, p in model.named_parameters() if n != "model.embed_tokens.weight"]
    full = full_entry_names([n for n, _ in named], cfg.num_hidden_layers, args.shape)
    tensors = {"input_ids": ids, "attention_mask": mask, "logits": logits.contiguous(), "targets": targets,
               "seq_lengths": torch.tensor(lengths, dtype=torch.int64)}
    objective = torch.zeros(B)
    for b, n in enumerate(lengths):
        row = ids[b:b + 1, :n].to(dev)
        last = model(input_ids=row).logits[0, n - 1].float()
        obj = torch.log_softmax(last, -1)[targets[b]]
        grads = torch.autograd.grad(obj, [p for _, p in named])
        objective[b] = obj.item()
        for (name, _), gr in zip(named, grads):
            tensors[f"grad_norm.{b}.{name}"] = gr.double().norm().float().reshape(1).cpu()
            if name in full:
                tensors[f"grad.{b}.{name}"] = gr.float().contiguous().cpu()
    tensors["objective"] = objective
    seconds["gradients"] = time.time() - t

    t = time.time()
    save_file(tensors, str(out / "expected.safetensors"), metadata={"format": "pt"})
    seconds["write"] = time.time() - t
    seconds["total"] = time.time() - t0
    meta = {
        "source": f"torch {torch.__version__} autograd on {args.device}, transformers {transformers.__version__}",
        "shape": args.shape, "bounds": BOUNDS[args.shape], "seed": args.seed, "lengths": lengths,
        "parameters": sum(p.numel() for p in model.parameters()),
        "block_parameters": sum(p.numel() for n, p in named if ".layers." in n and "norm" not in n),
        "full_entry_tensors": sorted(full), "norm_tensors": len(named),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    (out / "expected.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps({k: meta[k] for k in ("source", "shape", "parameters", "block_parameters", "seconds")}))


if __name__ == "__main__":
    main()
