"""The ``kind:key=value;key=value`` grammar shared by inference-time and training-time defense specs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from llm_mia.errors import LlmMiaError


@dataclass(frozen=True)
class DefenseSpec:
    """A defense kind with its settings, sorted by key; ``spec`` spells it back canonically."""

    kind: str
    params: tuple[tuple[str, Any], ...]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    @property
    def spec(self) -> str:
        return f"{self.kind}:" + ";".join(f"{k}={v}" for k, v in self.params)


def parse_kind_spec(
    spec: str,
    *,
    what: str,
    kinds: Mapping[str, Mapping[str, type]],
    defaults: Mapping[str, Mapping[str, Any]],
    required: Collection[str] | None = None,
    example: str = "",
) -> tuple[str, dict[str, Any]]:
    """(kind, settings) of ``spec``: the kind must be one of ``kinds``, each key one of its own, each value of its
    type; ``defaults`` fill keys not given; ``required`` (None: every key of the kind) must end up set.

    >>> parse_kind_spec("t:x=2", what="defense", kinds={"t": {"x": int}}, defaults={})
    ('t', {'x': 2})
    """
    kind, _, arguments = spec.strip().partition(":")
    kind = kind.strip().replace("-", "_")
    if kind not in kinds:
        raise LlmMiaError(f"{what} {spec!r}: unknown kind {kind!r}; valid: {', '.join(kinds)}{example}")
    params = dict(defaults.get(kind, {}))
    for assignment in filter(None, (a.strip() for a in arguments.split(";"))):
        key, eq, value = assignment.partition("=")
        key = key.strip()
        if not eq or key not in kinds[kind]:
            raise LlmMiaError(f"{what} {spec!r}: {kind} takes {', '.join(kinds[kind])}, not {assignment!r}")
        try:
            params[key] = kinds[kind][key](value.strip())
        except ValueError:
            raise LlmMiaError(f"{what} {spec!r}: {key}={value.strip()!r} is not a valid number") from None
    missing = [key for key in (kinds[kind] if required is None else required) if key not in params]
    if missing:
        raise LlmMiaError(f"{what} {spec!r}: give {', '.join(f'{m}=...' for m in missing)}")
    return kind, params
