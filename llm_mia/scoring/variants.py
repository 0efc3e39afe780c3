"""Text variants: transformations applied to a document before a forward pass.

A scorer that needs a variant (e.g. the lowercased text) asks for it through a view (``scorers.registry``);
the engine runs one extraction per (model, variant) and caches it. Adding a variant = one line here.
"""

from __future__ import annotations

from collections.abc import Callable

TEXT_VARIANTS: dict[str, Callable[[str], str]] = {
    "original": lambda text: text,
    "lowercase": str.lower,
}


def apply_variant(variant: str, text: str) -> str:
    try:
        return TEXT_VARIANTS[variant](text)
    except KeyError:
        raise ValueError(f"unknown text variant {variant!r}; known: {', '.join(TEXT_VARIANTS)}") from None
