"""``--dtype mixed``: bfloat16 where it pays, float32 where it decides the scores.

A transformer's time goes into the matrix products inside its blocks (attention projections, MLP); its scores'
last digits are decided elsewhere. Measured on WikiMIA with SmolLM2-135M (``benchmarks/precision_parts.py``,
``benchmarks/RESULTS.md``), plain bfloat16 moves per-text scores by rounding two things: the residual stream
(every block adds its output into a bfloat16 sum, 30 times over) and the logits (the output head's product
rounded to bfloat16, about 3 significant digits, before the float32 log-softmax). The mixed mode therefore
keeps in float32:

* the embeddings and the residual stream (each block's output is added in float32);
* every normalisation, the attention softmax and the rest of the attention core (its inputs, the projections'
  outputs, come back in float32);
* the final norm and the output head (logits in float32; log-softmax and every reduction are float32 in any
  mode, ``llm_mia.engine``),

and runs in bfloat16 only the weights of the matrix products inside the blocks (``nn.Linear`` and GPT-2's
``Conv1D``): each casts its input to bfloat16 and its output back to float32. Those weights take half the
memory.

bfloat16 pays only where the hardware multiplies it natively: GPUs of compute capability 8.0 or more, CPUs
with AMX or AVX-512 BF16 (:func:`fast_bfloat16`). Elsewhere it is emulated and slower than float32, so
``mixed`` loads the model in float32 and says so (:func:`dtype_in_effect`); the run record then names
float32, the precision the numbers were computed in.

Nothing here imports torch at module level (the command line lists ``DTYPES`` without loading it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MIXED = "mixed"
CPU_FLAGS_FILE = Path("/proc/cpuinfo")
# x86 CPU flags (as /proc/cpuinfo spells them) whose bfloat16 matrix products run faster than float32's
FAST_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(text: str | None = None) -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (or from ``text`` in that format); empty where there is
    no such file (macOS, Windows).

    >>> sorted(cpu_flags("processor : 0\\nflags : fpu avx2 avx512_bf16\\n"))
    ['avx2', 'avx512_bf16', 'fpu']
    """
    if text is None:
        try:
            text = CPU_FLAGS_FILE.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_model(text: str | None = None) -> str:
    r"""The CPU's model name from ``/proc/cpuinfo`` (or ``text`` in that format), as ``lscpu`` prints it; the
    platform's word for it where there is no such file.

    >>> cpu_model("processor : 0\nmodel name : AMD EPYC\n")
    'AMD EPYC'
    """
    if text is None:
        try:
            text = CPU_FLAGS_FILE.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def fast_bfloat16(device: str, flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """Whether ``device`` multiplies bfloat16 matrices natively (faster than float32), and why, in words.

    ``flags``: the CPU's feature flags (default: :func:`cpu_flags`). A CUDA GPU needs compute capability 8.0 or
    more (bfloat16 tensor cores: A100, H100, RTX 30xx and later); a CPU needs AMX or AVX-512 BF16; anything
    else (other CPUs, Apple's MPS) counts as slow.

    >>> fast_bfloat16("cpu", frozenset({"avx2", "avx512f"}))
    (False, 'this CPU has neither AMX nor AVX-512 BF16: bfloat16 would be emulated, slower than float32')
    >>> fast_bfloat16("cpu", frozenset({"avx512_bf16"}))[0]
    True
    """
    if device.startswith("cuda"):
        import torch

        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            return True, f"GPU of compute capability {major}.{minor} (bfloat16 tensor cores)"
        return False, f"GPU of compute capability {major}.{minor}: no bfloat16 tensor cores (8.0 and later have them)"
    if device == "cpu":
        found = [flag for flag in FAST_CPU_FLAGS if flag in (cpu_flags() if flags is None else flags)]
        if found:
            return True, f"CPU with {' and '.join(found)}"
        return False, "this CPU has neither AMX nor AVX-512 BF16: bfloat16 would be emulated, slower than float32"
    return False, f"device {device}: no measured fast bfloat16 path"


def dtype_in_effect(dtype: str, device: str, flags: frozenset[str] | None = None) -> str:
    """The dtype a model is loaded in: ``dtype`` itself, except ``mixed`` on hardware without fast bfloat16
    (:func:`fast_bfloat16`), which runs in float32 and says so in a warning."""
    if dtype != MIXED:
        return dtype
    fast, why = fast_bfloat16(device, flags)
    if fast:
        return MIXED
    logger.warning("--dtype mixed: %s; running in float32 (the run record says float32)", why)
    return "float32"


def weights_dtype(dtype: str) -> Any:
    """The torch dtype a model is loaded in for ``dtype`` (``mixed`` loads float32 and converts its blocks)."""
    import torch

    return torch.float32 if dtype == MIXED else getattr(torch, dtype)


def activation_bytes(dtype: str) -> int:
    """Bytes per activation value between blocks in ``dtype`` (the residual stream is float32 in ``mixed``)."""
    import torch

    return torch.finfo(weights_dtype(dtype)).bits // 8


def block_matmuls(model: Any) -> list[tuple[str, Any]]:
    """(name, module) of every matrix product inside the transformer blocks: each ``nn.Linear`` or ``Conv1D``
    except the output head (embeddings are ``nn.Embedding``, never listed)."""
    import torch

    head = model.get_output_embeddings()
    return [
        (name, module)
        for name, module in model.named_modules()
        if module is not head and (isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D")
    ]


def _to_bfloat16(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: the product's input in bfloat16."""
    import torch

    return (args[0].to(torch.bfloat16), *args[1:])


def _to_float32(module: Any, args: tuple[Any, ...], output: Any) -> Any:
    """Forward hook: the product's output back in float32."""
    import torch

    return output.to(torch.float32)


def to_mixed(model: Any) -> int:
    """Turn a float32 ``model`` into the mixed mode in place (module docstring): the weights of every block
    matrix product in bfloat16, its input cast to bfloat16 and its output back to float32. Returns how many
    products were converted (0 for a model with none, which then stays float32 throughout)."""
    import torch

    converted = block_matmuls(model)
    for _, module in converted:
        module.to(torch.bfloat16)
        module.register_forward_pre_hook(_to_bfloat16)
        module.register_forward_hook(_to_float32)
    return len(converted)
