"""Which part of the forward pass makes bfloat16's scores differ from float32's: SmolLM2 on WikiMIA.

Every variant scores the same WikiMIA texts through the engine (same batches, float32 log-softmax and
reductions) with one part of the forward pass in a precision other than the rest; each is compared with
float32, per scorer: the largest per-text |difference|, Spearman's rank correlation, and the AUROC (members vs
non-members) against float32's. Fidelity is deterministic: one pass per variant, no repeats.

Variants, from plain bfloat16 (everything bfloat16) towards float32, and from float32 towards bfloat16:

* ``bfloat16``: the whole model in bfloat16 (what ``--dtype bfloat16`` runs);
* ``bfloat16 + head fp32``: the output head in float32 (logits not rounded to bfloat16), the rest bfloat16;
* ``fp32 + head bf16``: float32, except the head (its input, weight and logits rounded to bfloat16);
* ``fp32 + embeddings bf16``: float32, except the embeddings (rounded to bfloat16);
* ``mixed``: ``--dtype mixed`` (``llm_mia.backends.precision``): block matrix products in bfloat16, their
  outputs back in float32; embeddings, residual stream, norms, attention core and head in float32;
* ``fp32 + residual rounded``: float32, with each block's output (the residual stream) rounded to bfloat16;
* ``fp32 + block products' weights / inputs / outputs rounded``: float32 arithmetic, with one of the three things
  the mixed mode rounds rounded to bfloat16, to tell which one its difference comes from;
* ``mixed, attention only`` / ``mixed, MLP only``: the mixed mode for one kind of block product only;
* ``mixed, first and last blocks fp32``: the mixed mode in every block but the first and the last;
* ``mixed + head bf16``: the head in bfloat16 too (logits rounded).

    python benchmarks/precision_parts.py                           # WikiMIA-32, all 776 texts
    python benchmarks/precision_parts.py --input ../shared/data/wikimia/128.jsonl --size 128
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from llm_mia.backends.local import ModelSpec, load_model
from llm_mia.backends.precision import block_matmuls, to_mixed
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.io.labelled_sets import load_wikimia
from llm_mia.scoring.scorers import parse_scorer_specs
from llm_mia.stats.metrics import auroc
from llm_mia.workflows.precision import sample_documents

WIKIMIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia"
SCORERS = ["loss", "zlib", "min_k", "min_k_plus_plus"]
BF16, FP32 = torch.bfloat16, torch.float32


def cast_input(dtype):
    return lambda module, args: (args[0].to(dtype), *args[1:])


def cast_output(dtype):
    return lambda module, args, output: output.to(dtype)


def float32_head(model, reference) -> None:
    """An untied float32 copy of ``reference``'s head, reading its input in float32."""
    weight = reference.get_output_embeddings().weight.detach().clone()
    head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    head.weight = torch.nn.Parameter(weight, requires_grad=False)
    head.register_forward_pre_hook(cast_input(FP32))
    model.set_output_embeddings(head)


def bfloat16_head(model) -> None:
    """An untied bfloat16 copy of the head: input, weight and logits in bfloat16."""
    weight = model.get_output_embeddings().weight.detach().clone().to(BF16)
    head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=BF16)
    head.weight = torch.nn.Parameter(weight, requires_grad=False)
    head.register_forward_pre_hook(cast_input(BF16))
    model.set_output_embeddings(head)


def round_through_bfloat16(tensor):
    return tensor.to(BF16).to(FP32)


def rounded_products(model, what: str, names: tuple[str, ...] = ()) -> None:
    """float32 block products, with their ``what`` (weights, inputs or outputs) rounded to bfloat16: one source of
    the mixed mode's difference at a time (the arithmetic stays float32). ``names``: only the products whose name
    ends so (all when empty)."""
    for name, module in block_matmuls(model):
        if names and not name.endswith(names):
            continue
        if what == "weights":
            module.weight.data = round_through_bfloat16(module.weight.data)
        elif what == "inputs":
            module.register_forward_pre_hook(lambda m, args: (round_through_bfloat16(args[0]), *args[1:]))
        else:
            module.register_forward_hook(lambda m, args, output: round_through_bfloat16(output))


def mixed_only(model, names: tuple[str, ...]) -> None:
    """The mixed mode for the block products whose name ends in one of ``names``; the others stay float32."""
    for name, module in block_matmuls(model):
        if name.endswith(names):
            module.to(BF16)
            module.register_forward_pre_hook(cast_input(BF16))
            module.register_forward_hook(cast_output(FP32))


ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


def variant(name: str, reference):
    model = copy.deepcopy(reference)
    if name == "bfloat16":
        model.to(BF16)
    elif name == "bfloat16 + head fp32":
        model.to(BF16)
        float32_head(model, reference)
    elif name == "fp32 + head bf16":
        bfloat16_head(model)
    elif name == "fp32 + embeddings bf16":
        model.model.embed_tokens.register_forward_hook(lambda m, a, out: round_through_bfloat16(out))
    elif name == "fp32 + residual rounded":
        for layer in model.model.layers:
            layer.register_forward_hook(lambda m, a, out: round_through_bfloat16(out))
    elif name.startswith("fp32 + block products' "):
        rounded_products(model, name.split()[-2])
    elif name == "mixed":
        to_mixed(model)
    elif name == "mixed, attention only":
        mixed_only(model, ATTENTION)
    elif name == "mixed, MLP only":
        mixed_only(model, MLP)
    elif name == "mixed, first and last blocks fp32":
        last = len(model.model.layers) - 1
        mixed_only(model, tuple(f"layers.{i}.{p}" for i in range(1, last) for p in ATTENTION + MLP))
    elif name == "mixed + head bf16":
        to_mixed(model)
        bfloat16_head(model)
    else:
        raise ValueError(name)
    return model


VARIANTS = (
    "bfloat16",
    "bfloat16 + head fp32",
    "fp32 + head bf16",
    "fp32 + embeddings bf16",
    "fp32 + residual rounded",
    "fp32 + block products' weights rounded",
    "fp32 + block products' inputs rounded",
    "fp32 + block products' outputs rounded",
    "mixed",
    "mixed, attention only",
    "mixed, MLP only",
    "mixed, first and last blocks fp32",
    "mixed + head bf16",
)


def scores(loaded, texts: list[str], batch_size: int, calls) -> dict[str, np.ndarray]:
    stats = extract(texts, loaded, ExtractionSettings(batch_size=batch_size, progress=False))
    return {call.column: np.array([call({"target": s}) for s in stats], dtype=float) for call in calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(WIKIMIA / "32.jsonl"))
    parser.add_argument("--size", type=int, default=0, help="a seeded sample of this many texts (0: all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    documents = load_wikimia(args.input)
    if args.size:
        documents = [documents[i] for i in sample_documents(documents, args.size, seed=0)]
    texts, labels = [d.text for d in documents], np.array([d.label for d in documents])
    loaded = load_model(ModelSpec("smollm2-135m", device="cpu"))
    calls = parse_scorer_specs(SCORERS, has_reference=False)
    started = time.perf_counter()
    full = scores(loaded, texts, args.batch_size, calls)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, load "
        f"{os.getloadavg()[0]:.1f}; SmolLM2-135M on {Path(args.input).name}: {len(texts)} texts "
        f"({int(labels.sum())} members); float32 pass {time.perf_counter() - started:.0f} s"
    )
    header = "| variant | " + " | ".join(f"{c} max abs diff / Spearman / AUROC" for c in full) + " |"
    print(header)
    print("|---" * (1 + len(full)) + "|")
    print("| float32 | " + " | ".join(f"0 / 1 / {auroc(full[c], labels):.3f}" for c in full) + " |")
    for name in args.variants:
        model = variant(name, loaded.model)
        low = scores(dataclasses.replace(loaded, model=model), texts, args.batch_size, calls)
        del model
        cells = []
        for column in full:
            difference = float(np.max(np.abs(low[column] - full[column])))
            rho = float(spearmanr(low[column], full[column]).statistic)
            cells.append(f"{difference:.4f} / {rho:.5f} / {auroc(low[column], labels):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
