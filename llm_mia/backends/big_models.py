"""Models larger than one device: accelerate's big-model loading behind ``--device-map auto``.

``from_pretrained(device_map="auto", max_memory=...)`` places whole layers on the GPUs in order, then on the
CPU, then on disk (offloaded weights are loaded onto the execution device layer by layer, at each forward
pass). The engine sends its inputs to the input embeddings' device and runs the vocabulary reductions on
whichever device the output head computes on (``llm_mia.engine.extract``), so the numbers equal a plain load's up to
float rounding (tested with part of a model offloaded to disk: within 1e-5).

Refused before anything is scored: a ``--max-memory`` so small that the execution device cannot hold even the
largest single block (every layer must pass through it, offloaded or not), naming the size needed.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from llm_mia.errors import LlmMiaError

_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGT]?i?B)\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
_UNITS["TIB"] = 2**40


def parse_size(text: str) -> int:
    """Bytes in a size such as ``20GiB``, ``500MB`` or ``64KB``.

    >>> parse_size("20GiB"), parse_size("1.5 MB"), parse_size("64KB")
    (21474836480, 1500000, 64000)
    """
    match = _SIZE.match(text)
    if not match:
        raise LlmMiaError(f"--max-memory size {text!r}: give a number and a unit, e.g. 20GiB, 500MB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def parse_max_memory(text: str) -> tuple[tuple[str, str], ...]:
    """``--max-memory cuda:0=20GiB,cuda:1=20GiB,cpu=60GiB`` as (device, size) pairs, checked.

    >>> parse_max_memory("cuda:0=20GiB, cpu=500MB")
    (('cuda:0', '20GiB'), ('cpu', '500MB'))
    """
    pairs = []
    for part in text.split(","):
        device, _, size = part.strip().partition("=")
        device = device.strip()
        if not size or not (device in ("cpu", "mps") or re.fullmatch(r"(cuda:)?\d+", device)):
            raise LlmMiaError(
                f"--max-memory {part.strip()!r}: give device=size pairs, devices cuda:N (or N), cpu or mps, e.g. "
                "cuda:0=20GiB,cpu=60GiB"
            )
        parse_size(size)
        pairs.append((device, size.strip()))
    return tuple(pairs)


def _accelerate_keys(pairs: tuple[tuple[str, str], ...]) -> dict[int | str, int]:
    """accelerate's form: GPU index -> bytes, "cpu" / "mps" -> bytes."""
    return {
        (int(device.split(":")[-1]) if device not in ("cpu", "mps") else device): parse_size(size)
        for device, size in pairs
    }


def _execution_device(limits: dict[int | str, int]) -> int | str:
    """Where offloaded layers run: the first GPU when there is one, else the CPU."""
    import torch

    if torch.cuda.is_available():
        gpus = sorted(key for key in limits if isinstance(key, int)) or [0]
        return gpus[0]
    return "cpu"


def check_fits(directory: Path, spec: Any, limits: dict[int | str, int], common: dict[str, Any]) -> None:
    """Refuse limits under which the execution device cannot hold the model's largest block (module docstring)."""
    import torch
    from accelerate import init_empty_weights
    from accelerate.utils import compute_module_sizes
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(directory, **common)
    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, spec.dtype))
    sizes = compute_module_sizes(empty, dtype=getattr(torch, spec.dtype))
    blocks = set(getattr(empty, "_no_split_modules", None) or [])
    candidates = [
        sizes[name]
        for name, module in empty.named_modules()
        if name and (type(module).__name__ in blocks or not list(module.children()))
    ]
    largest = max(candidates) if candidates else sizes[""]
    device = _execution_device(limits)
    allowed = limits.get(device)
    if allowed is not None and allowed < largest:
        where = f"cuda:{device}" if isinstance(device, int) else device
        raise LlmMiaError(
            f"--max-memory gives {where} {allowed:,} bytes, but the largest block of {spec.name} needs {largest:,} "
            f"bytes there to run even with everything else offloaded; raise its limit"
        )


def load_dispatched(directory: Path, spec: Any, common: dict[str, Any]) -> tuple[Any, str]:
    """Load with ``device_map="auto"`` within ``spec.max_memory`` (offloaded weights in a temporary folder
    removed at exit); returns the model and the device its inputs go to."""
    import torch
    from transformers import AutoModelForCausalLM

    limits = _accelerate_keys(spec.max_memory) if spec.max_memory else None
    if limits is not None:
        check_fits(directory, spec, limits, common)
    offload = Path(tempfile.mkdtemp(prefix="llm-mia-offload-"))
    atexit.register(shutil.rmtree, offload, True)
    model = AutoModelForCausalLM.from_pretrained(
        directory,
        dtype=getattr(torch, spec.dtype),
        device_map="auto",
        max_memory=limits,
        offload_folder=str(offload),
        **common,
    )
    model.eval()
    placed = getattr(model, "hf_device_map", {}) or {}
    embedding = next((device for name, device in placed.items() if "embed" in name), None)
    if embedding is None or embedding == "disk":
        embedding = _execution_device(limits or {})
    device = f"cuda:{embedding}" if isinstance(embedding, int) else str(embedding)
    return model, device
