"""The registered scorers and shadow-model attacks, as ``llm-mia list`` shows them: the views (model passes) each
scorer reads, what it costs, its hyperparameters and summary; with a model behind an API, what that endpoint
returns and which scorers it can serve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_mia.backends.remote.client import ApiSettings
from llm_mia.scoring.scorers import all_scorers

PASSES = {
    "target": "shared pass",
    "target_lower": "+1 pass (lowercased)",
    "reference": "+1 reference pass",
    "target_recall": "",  # its own cost line says it
    "target_gradient": "",
    "target_neighbours": "",
}


def cost_class(scorer: Any) -> str:
    """What a scorer costs: the forward passes its views need (the target's is shared by every scorer), and
    anything of its own (``register(cost=...)``: a corpus table, a backward pass, generation)."""
    parts = [PASSES.get(view, f"+1 pass ({view})") for view in scorer.views if PASSES.get(view, True)]
    if scorer.cost != "one pass":
        parts.append(scorer.cost)
    return ", ".join(parts)


@dataclass
class ScorerListing:
    """The listing. ``endpoint``: lines about the probed endpoint (none without one); ``served``: the arrays that
    endpoint returns (None: no endpoint probed); ``docs``: each scorer's full docstring too."""

    endpoint: list[str] = field(default_factory=list)
    served: set[str] | None = None
    docs: bool = False

    @property
    def record(self) -> dict[str, Any]:
        """Every scorer's name, views, cost, defaults and, with an endpoint, whether it is served."""
        return {
            name: {
                "views": list(scorer.views),
                "cost": cost_class(scorer),
                "defaults": dict(scorer.defaults),
                "opt_in": scorer.opt_in,
                "length_invariant": scorer.length_invariant,
                **({} if self.served is None else {"served": set(scorer.needs) <= self.served}),
            }
            for name, scorer in all_scorers().items()
        }

    def summary_lines(self) -> list[str]:
        from llm_mia.shadow.attacks import ATTACK_SUMMARIES

        lines = [*self.endpoint]
        for scorer in all_scorers().values():
            params = ", ".join(f"{k}={v}" for k, v in scorer.defaults.items()) or "-"
            length = "" if scorer.length_invariant else " [length-sensitive: left out of dataset tests]"
            served = ""
            if self.served is not None:
                missing = sorted(set(scorer.needs) - self.served)
                served = "  " + (f"[not served: needs {', '.join(missing)}]" if missing else "[served]")
            reads = ", ".join(scorer.views)
            opt_in = " [opt-in: runs when named]" if scorer.opt_in else ""
            lines.append(
                f"{scorer.name:<18} reads: {reads:<22} cost: {cost_class(scorer):<34} params: {params:<8} "
                f"{scorer.summary}{length}{opt_in}{served}"
            )
            if self.docs:
                lines += ["    " + line for line in scorer.doc.splitlines()]
                lines += [
                    f"    {key}: {constraint.describe()}, default {scorer.defaults[key]!r}"
                    for key, constraint in scorer.constraints.items()
                ]
                lines.append("")
        lines.append(
            "\nshadow-model attacks (llm-mia shadow evaluate; calibrated on models trained with and without each text):"
        )
        lines += [f"{name:<18} {summary}" for name, summary in ATTACK_SUMMARIES.items()]
        return [*lines, "all scores: higher = more likely a member"]


def list_scorers(*, model: str | None = None, api: ApiSettings | None = None, docs: bool = False) -> ScorerListing:
    """``llm-mia list``: every registered scorer; with ``model`` (``api:NAME`` at ``api``), the endpoint probed
    first (what it returns, its agreement check) and each scorer marked served or not."""
    if model is None:
        return ScorerListing(docs=docs)
    from llm_mia.backends.local import ModelSpec
    from llm_mia.backends.remote.model import connect

    endpoint = connect(ModelSpec(name=model), api)
    check = endpoint.describe()["agreement_check"]
    if not isinstance(check, str):
        check = f"{'agrees' if check['agrees'] else 'DOES NOT AGREE'} (checked {check['checked_at']})"
    lines = [
        f"{model} at {endpoint.api.root} (reports model {endpoint.capabilities.model_version!r})",
        endpoint.capabilities.describe(),
        f"agreement check: {check}",
        "",
    ]
    return ScorerListing(endpoint=lines, served=set(endpoint.capabilities.arrays), docs=docs)
