"""The checks ``llm-mia verify`` reports on a bundle, and the ones every kind of bundle shares.

A check passes, fails or could not run (``NOT_RUN``: the model or an input is not on this machine), and says
what it saw. The verify workflows (``llm_mia.workflows.verify`` and each analysis's own checks) build them;
they live here, in the bundle format's package, so that every kind of bundle's checks share them without
importing one another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASS, FAIL, NOT_RUN = "pass", "FAIL", "not run"


@dataclass(frozen=True)
class Check:
    name: str
    outcome: str
    detail: str

    def line(self) -> str:
        return f"{self.outcome:<8} {self.name}: {self.detail}"


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of a JSON-lines file, or the first problem ("<file>:<line> ...")."""
    if not path.is_file():
        return [], f"{path.name} is missing"
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return rows, f"{path.name}:{number} is not JSON"
        if not isinstance(row, dict):
            return rows, f"{path.name}:{number} is not a JSON object"
        rows.append(row)
    return rows, None


def passages_check(bundle: Path, plan: Any) -> Check:
    """passages.jsonl holds exactly the planned passages (id, side and SHA-256)."""
    rows, problem = read_jsonl(bundle / "passages.jsonl")
    if problem:
        return Check("passages", FAIL, problem)
    planned: dict[tuple[str | None, str | None], str] = {  # (side, id): the text's SHA-256; a row may lack either
        (side, p["id"]): p["sha256"] for side in ("suspect", "control") for p in plan.data["inputs"][side]["passages"]
    }
    for number, row in enumerate(rows, start=1):
        key = (row.get("set"), row.get("id"))
        if planned.get(key) != row.get("text_sha256"):
            return Check("passages", FAIL, f"passages.jsonl:{number} ({key[0]} {key[1]}) is not a planned passage")
    if len(rows) != len(planned) or len({(r.get("set"), r.get("id")) for r in rows}) != len(planned):
        return Check("passages", FAIL, f"passages.jsonl has {len(rows)} rows, the plan {len(planned)} passages")
    return Check("passages", PASS, f"all {len(planned)} passages are the planned ones")
