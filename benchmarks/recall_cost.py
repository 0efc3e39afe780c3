"""What ReCaLL costs: reading each text after a prefix whose key/value cache is encoded once, against reading
each text alone and against re-encoding the prefix with every text (what the authors' code does).

Prints, measured in one run on the packaged SmolLM2 and Wikipedia summaries: seconds per text for each, and the
ratios. Every extraction bypasses the stats cache.

    python benchmarks/recall_cost.py --texts 48 --shots 5 --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.engine.extract import condition_ids, extract
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.known_split.splits import wikipedia_documents

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=48)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    documents = [d.text for d in wikipedia_documents() if 40 <= len(d.text.split()) <= 80]
    prefix_texts, texts = documents[: args.shots], documents[args.shots : args.shots + args.texts]
    prefix = "".join(t + "\n\n" for t in prefix_texts)
    loaded = load_model(ModelSpec(name="smollm2-135m", device="cpu"))
    settings = ExtractionSettings(batch_size=args.batch_size, progress=False)
    condition = condition_ids(loaded, prefix)
    extract(texts[:2], loaded, settings)  # warm-up
    timings = {}
    for name, run in (
        ("alone", lambda: extract(texts, loaded, settings)),
        ("after the prefix, encoded once", lambda: extract(texts, loaded, settings, condition=condition)),
        ("prefix re-encoded with every text", lambda: extract([prefix + t for t in texts], loaded, settings)),
    ):
        start = time.perf_counter()
        run()
        timings[name] = (time.perf_counter() - start) / len(texts)
    base = timings["alone"]
    print(
        f"SmolLM2-135M, {len(texts)} texts, a {len(condition)}-token prefix of {args.shots} texts, "
        f"batch {args.batch_size}, {args.threads} thread(s)"
    )
    for name, seconds in timings.items():
        print(f"  {name:<36} {seconds * 1000:7.1f} ms per text  ({seconds / base:.2f}x reading it alone)")


if __name__ == "__main__":
    main()
