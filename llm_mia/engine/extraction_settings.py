"""How texts are batched and windowed for the engine: ``ExtractionSettings``, validated on construction and
importable without torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from llm_mia.engine.threads import parse_threads
from llm_mia.errors import LlmMiaError


@dataclass(frozen=True)
class ExtractionSettings:
    """How texts are batched and windowed.

    ``batch_size``: segments per forward pass, or ``"auto"``: batches of the largest token count that fits, found
    once per model, device and window and remembered (``llm_mia.engine.batch_size``). ``window``: tokens per model call
    including the BOS prefix (default: the model's context length). ``stride``: new tokens scored per window after
    the first (default: half of the window's content capacity); every scored token beyond the first window sees at
    least ``window - len(prefix) - stride`` tokens of context. ``block_documents``: documents planned together, in
    input order: batches are formed (length-sorted) within each block, so a block is the unit a distributed engine
    hands out and commits, and a document's bits depend only on its block. ``threads``: torch CPU threads, a number,
    ``"auto"`` (the cores other work leaves free, ``llm_mia.engine.threads``) or None (torch's own setting); on CPU the
    count changes the last bits, so bit-identical reruns need a fixed number. ``progress``: show a progress bar over
    tokens.
    """

    batch_size: int | Literal["auto"] = 8
    window: int | None = None
    stride: int | None = None
    block_documents: int = 256
    threads: int | str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise LlmMiaError(f"batch_size must be an integer >= 1 or 'auto', got {self.batch_size!r}")
        if self.window is not None and self.window < 2:
            raise LlmMiaError(f"window must be >= 2 tokens, got {self.window}")
        if self.stride is not None and self.stride < 1:
            raise LlmMiaError(f"stride must be >= 1 token, got {self.stride}")
        if self.block_documents < 1:
            raise LlmMiaError(f"block_documents must be >= 1, got {self.block_documents}")
        object.__setattr__(self, "threads", parse_threads(self.threads))

    def to_dict(self) -> dict[str, Any]:
        """What decides the numbers (progress does not)."""
        return {
            "batch_size": self.batch_size,
            "window": self.window,
            "stride": self.stride,
            "block_documents": self.block_documents,
            "threads": self.threads,
        }
