"""The canary report: one self-contained HTML page (same rules as ``llm_mia.evidence.report_html``: no
external request, fixed wording per verdict) for a canary test carried out from a plan."""

from __future__ import annotations

import json
from typing import Any

from llm_mia.evidence.report_html import CSP, STYLE, _escape, chance_in_words
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
    target = plan["models"]["target"]
    secret = plan["secret"]
    rows = "".join(
        f"<tr><td>{_escape(r['canary'])}</td><td>{r['rank']} of {secret['siblings_per_canary'] + 1}</td>"
        f"<td>{_escape(format_p_value(r['p_value']))}</td><td>{r['exposure']:.1f}</td></tr>"
        for r in per_canary
    )
    plan_text = _escape(json.dumps(plan, indent=1, sort_keys=True, ensure_ascii=False))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>Canary test report: {_escape(plan["question"])}</title>
{STYLE}
</head>
<body>
<h1>Was the model trained on the published canaries?</h1>
<h2>1. The question</h2>
<p>{_escape(plan["question"])}</p>
<p>Analyst: {_escape(plan["analyst"])}. Plan fixed on {_escape(plan["created"])} (UTC), before any score was
computed.</p>
<h2>2. The answer</h2>
<div class="answer">
<p class="verdict" id="verdict">{_escape(title)} (alpha = {_escape(alpha)}).</p>
<p id="verdict-sentence">{_escape(results["verdict_sentence"])}</p>
<p>{_escape(explanation.format(alpha=alpha))}</p>
<p id="strength">{_escape(p_phrase(p))}: if the model had not been trained on the canaries, a result at least
this strong would arise by chance {_escape(chance_in_words(p))}.</p>
</div>
<h2>3. What was tested</h2>
<ul>
<li>Model: <b>{_escape(target["name"])}</b>, file-list SHA-256 <code>{_escape(target["files_sha256"])}</code></li>
<li>Secret file: SHA-256 <code>{_escape(secret["sha256"])}</code> (the commitment), {secret["canaries"]} canaries
with {secret["siblings_per_canary"]} never-published siblings each, {_escape(secret["generator"])} generator</li>
<li>Scorer: {_escape(results["scorer"])}; {results["detected"]} of {results["canaries"]} canaries at p &le; {alpha}</li>
</ul>
<h2>4. Per canary</h2>
<table><tr><th>canary</th><th>rank (1 = highest)</th><th>p-value</th><th>exposure (bits)</th></tr>{rows}</table>
<h2>5. Method</h2>
<p>{METHOD}</p>
<p>Assumption: {_escape(results["assumption"])}. Guarantee: {_escape(results["guarantee"])}.</p>
<p>The primary outcome was declared in the plan: {_escape(plan["primary_outcome"])}.</p>
<h2>6. Limitations</h2>
<ul>{"".join(f"<li>{_escape(item)}</li>" for item in LIMITATIONS)}</ul>
<h2>Appendix: the plan and the evidence hash</h2>
<p>Plan SHA-256: <code id="plan-sha256">{_escape(plan_sha256)}</code></p>
<p>Evidence SHA-256 (of the manifest lines of every data file in the bundle; <code>llm-mia verify</code> checks it):
<code id="evidence-sha256">{_escape(evidence_sha256)}</code></p>
<pre>{plan_text}</pre>
</body>
</html>
"""
