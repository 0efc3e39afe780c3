"""The canary report: one self-contained HTML page (same rules as ``llm_mia.evidence.report_html``: no
external request, fixed wording per verdict) for a canary test carried out from a plan; the page is
``templates/canary.html.j2``."""

from __future__ import annotations

from typing import Any

from llm_mia.evidence.report_html import chance_in_words
from llm_mia.evidence.report_page import render_page
from llm_mia.stats.metrics import format_p_value, p_phrase

ANSWERS = {
    "consistent": (
        "Consistent with training on the canaries",
        "The published canaries score higher under the model than their never-published siblings, by more than "
        "chance explains at the {alpha} level. Training on text that contained them would produce this; it is "
        "evidence with a stated error rate, not proof.",
    ),
    "not distinguishable": (
        "Not distinguishable from never-published text",
        "The published canaries score no higher than their never-published siblings, beyond what chance explains "
        "at the {alpha} level. This does not show that the text was not used: a model can see a canary a few "
        "times and keep too little of it for this test to see.",
    ),
}

METHOD = (
    "Before publication, each canary was drawn together with S siblings from one seeded random generator, and "
    "the published one was chosen among them at random; only the canary was published, the siblings were kept "
    "secret (their file's SHA-256 was committed at planting time and is fixed in the plan). The model scores "
    "every canary and every sibling with the planned scorer (higher = more like training text). If the model "
    "was not trained on the canary, the canary is just one of S + 1 exchangeable draws, so its rank among them "
    "is uniform: p = rank / (S + 1), ties counted against the canary, is exact with no model of the scores "
    "(Carlini et al. 2019, 'The Secret Sharer'; Meeus et al. 2024, 'Copyright Traps for Large Language Models'). "
    "Exposure = log2(S + 1) - log2(rank). The canaries are independent draws, so their p-values are independent "
    "under the null and Fisher's method combines them: X = -2 &Sigma; ln p_i, chi-squared with 2N degrees of "
    "freedom, with p-values of discrete tests combined as if continuous (the combined p is then conservative)."
)

LIMITATIONS = [
    "The test shows whether the model favours the published canaries over draws it cannot have seen. It cannot "
    "show where the model saw them: the work itself, a copy of it, or any text that quoted the canaries.",
    "The p-value rests on the canaries having been chosen at random among their siblings after drawing, and on "
    "the siblings never having been published; the secret file's hash, committed at planting time, is what "
    "shows they were not changed since.",
    "The smallest possible p-value per canary is 1 / (S + 1); few siblings limit what one canary can show.",
    "The p-value is the chance of a result at least this strong if the canaries had not been trained on; it is "
    "not the chance that they were.",
]


def render_canary_report(
    *,
    plan: dict[str, Any],
    plan_sha256: str,
    results: dict[str, Any],
    per_canary: list[dict[str, Any]],
    evidence_sha256: str,
) -> str:
    """The report as one HTML string (module docstring)."""
    alpha = f"{results['alpha']:g}"
    title, explanation = ANSWERS[results["verdict"]]
    p = results["combined_p_value"]
    return render_page(
        "canary.html.j2",
        plan=plan,
        plan_sha256=plan_sha256,
        evidence_sha256=evidence_sha256,
        results=results,
        title=title,
        alpha=alpha,
        explanation=explanation.format(alpha=alpha),
        p_words=p_phrase(p),
        chance=chance_in_words(p),
        target=plan["models"]["target"],
        secret=plan["secret"],
        per_canary=[{**row, "p_value_text": format_p_value(row["p_value"])} for row in per_canary],
        method=METHOD,
        limitations=LIMITATIONS,
    )
