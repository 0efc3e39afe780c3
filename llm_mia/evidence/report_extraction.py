"""The extraction report: one self-contained HTML page (the rules of ``llm_mia.evidence.report_html``: no
external request, figures as data URIs, fixed wording per verdict) for an extraction test carried out from a
plan. It shows the verdict, the passages the model continued verbatim beside the original with the matching
text highlighted, the match-length distribution of the work against the control works and the reference model,
the checks, the method and the limitations."""

from __future__ import annotations

import json
from typing import Any

from llm_mia.evidence.report_html import ANSWERS, CSP, STYLE, _data_uri, _escape, chance_in_words
from llm_mia.stats.metrics import p_phrase

HIGHLIGHT = "<style>mark { background: #ffe066; } td.text { font-family: monospace; font-size: 0.8em; }</style>"

METHOD = (
    "Every passage of the work and of the control works has k + L tokens. The model is given the first k tokens "
    "and writes the next L by greedy decoding (its most probable token at each step); the number of tokens it "
    "reproduces before its first mismatch is the exact-match length, and a passage counts as extracted when that "
    "length reaches the planned threshold (Carlini et al. 2023, 'Quantifying Memorization Across Neural Language "
    "Models': discoverable memorization). A reference model that cannot have seen the work is given the same "
    "prefixes: a passage it also continues is formulaic text (a licence, boilerplate, a quotation everybody "
    "repeats) and is left out of every claim. The per-passage match lengths, longest common runs and extraction "
    "flags of the remaining passages are combined and the work is ranked among the control works by the "
    "work-level permutation test of the dataset-level analysis: the p-value is the share of labellings of the "
    "works in which the work labelled as the suspect scores at least as high as the real one."
)

LIMITATIONS = [
    "A verbatim continuation shows the model saw the text or a copy of it; it cannot show where (the work itself, "
    "a quotation of it, another site that copied it).",
    "Formulaic text is recognised only as far as the reference model recognises it; a reference model that saw "
    "the work would hide real extraction, one that saw little text would miss formulaic passages.",
    "The work-level verdict rests on the control works being of the same kind as the work and unseen by the "
    "model; nothing in the data can check that they were unseen.",
    "Greedy decoding finds what the model writes most readily; a model can hold a text it does not write back "
    "unprompted, so no extraction is not evidence that the text was not used.",
]


def common_prefix(a: str, b: str) -> int:
    """Characters at the start of ``a`` and ``b`` that agree (the highlighted, verbatim part).

    >>> common_prefix(" the cat sat", " the cat lay")
    9
    """
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same


def _pair(row: dict[str, Any]) -> str:
    original, written = row["target_text"], row["generated_text"]
    same = common_prefix(original, written)

    def marked(text: str) -> str:
        return f"<mark>{_escape(text[:same])}</mark>{_escape(text[same:])}"

    where = f"{row['source']}, characters {row['char_start']}&ndash;{row['char_end']}"
    reference = "" if row.get("ref_match_tokens") is None else f"; reference model: {row['ref_match_tokens']}"
    return (
        f"<tr><td colspan='2'><b>{_escape(row['id'])}</b> ({where}): {row['match_tokens']} tokens matched before "
        f"the first mismatch, longest common run {row['lcs_tokens']}{_escape(reference)}<br>prompt: "
        f"<span class='text'>&hellip;{_escape(row['prefix_text'][-160:])}</span></td></tr>"
        f"<tr><td class='text'>{marked(original)}</td><td class='text'>{marked(written)}</td></tr>"
    )


def render_extraction_report(
    *,
    plan: dict[str, Any],
    plan_sha256: str,
    results: dict[str, Any],
    rows: list[dict[str, Any]],
    figures: dict[str, bytes],
    evidence_sha256: str,
    shown: int = 25,
) -> str:
    """The report as one HTML string (module docstring); ``shown``: passages shown side by side (the extracted
    ones first, then the suspect passages with the longest matches)."""
    inference, evidence = results["result"], results["passage_evidence"]
    alpha = f"{inference['alpha']:g}"
    title, explanation = ANSWERS.get(results["verdict"], (results["verdict"], "{alpha}"))
    p = inference["p_value"]
    models = plan["models"]
    settings = plan["settings"]
    suspect = sorted(
        (r for r in rows if r["set"] == "suspect"),
        key=lambda r: (not (r["match_tokens"] >= evidence["min_match"] and not r["formulaic"]), -r["match_tokens"]),
    )
    pairs = "".join(_pair(r) for r in suspect[:shown])
    formulaic = "".join(
        f"<li>{_escape(r['set'])} {_escape(r['id'])}: target {r['match_tokens']}, reference {r['ref_match_tokens']} "
        f"tokens</li>"
        for r in evidence["formulaic"]
    )
    guards = "".join(
        f"<tr><td>{_escape(g['name'])}</td><td class='{'failed' if g['fired'] and g['withholds'] else 'passed'}'>"
        f"{'fired' if g['fired'] else 'passed' if g['ran'] else 'not run'}</td><td>{_escape(g['detail'])}</td></tr>"
        for g in inference["safeguards"]
    )
    images = "".join(
        f"<figure><img src='{_data_uri(data)}' alt='{_escape(caption)}'><figcaption>{_escape(caption)}</figcaption>"
        f"</figure>"
        for caption, data in figures.items()
    )
    reference = models.get("reference", {}).get("name")
    plan_text = _escape(json.dumps(plan, indent=1, sort_keys=True, ensure_ascii=False))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>Extraction test report: {_escape(plan["question"])}</title>
{STYLE}
{HIGHLIGHT}
</head>
<body>
<h1>Does the model write this work back, word for word?</h1>
<h2>1. The question</h2>
<p>{_escape(plan["question"])}</p>
<p>Analyst: {_escape(plan["analyst"])}. Plan fixed on {_escape(plan["created"])} (UTC), before any continuation
was generated. Why the control works are a fair comparison: {_escape(plan["control_rationale"])}</p>
<h2>2. The answer</h2>
<div class="answer">
<p class="verdict" id="verdict">{_escape(title)} (alpha = {_escape(alpha)}).</p>
<p id="verdict-sentence">{_escape(results["verdict_sentence"])}</p>
<p>{_escape(explanation.format(alpha=alpha))}</p>
<p id="strength">{_escape(p_phrase(p))}: if the work had been like the control works and not trained on, a
result at least this strong would arise by chance {_escape(chance_in_words(p))}.</p>
<p id="passage-evidence">{_escape(evidence["sentence"])}.</p>
</div>
<h2>3. What was tested</h2>
<ul>
<li>Model: <b>{_escape(models["target"]["name"])}</b>, file-list SHA-256
<code>{_escape(models["target"]["files_sha256"])}</code></li>
<li>Reference model (chance check): {_escape(reference or "none: formulaic text is not excluded")}</li>
<li>Prefix k = {settings["prefix_tokens"]} tokens, target L = {settings["target_tokens"]} tokens; extracted = an
exact match of at least {settings["min_match"]} tokens; formulaic = the reference model matches at least
{settings["formulaic_tokens"]}; {_escape(settings["decoding"])}</li>
<li>Suspect work: {results["passages"]["suspect"]["passages"]} passages ({results["passages"]["suspect"]["formulaic"]}
formulaic); control works: {results["passages"]["control"]["works"]} works, {results["passages"]["control"]["passages"]}
passages ({results["passages"]["control"]["formulaic"]} formulaic)</li>
</ul>
<h2>4. The passages, beside what the model wrote</h2>
<p>Left: the work's own continuation of each prompt; right: the model's. The highlighted text is identical in
both, from the first character.</p>
<table><tr><th>the work</th><th>the model</th></tr>{pairs}</table>
<p>Formulaic passages, left out of every claim:</p><ul>{formulaic or "<li>none</li>"}</ul>
<h2>5. Figures</h2>
{images}
<h2>6. Checks that could have failed</h2>
<table><tr><th>check</th><th>outcome</th><th>detail</th></tr>{guards}</table>
<h2>7. Method</h2>
<p>{_escape(METHOD)}</p>
<p>Assumption of the verdict: {_escape(inference["assumption"])}. Guarantee: {_escape(inference["guarantee"])}.</p>
<p>Assumption per passage: {_escape(evidence["assumption"])}. Guarantee: {_escape(evidence["guarantee"])}.</p>
<p>The primary outcome was declared in the plan: {_escape(plan["primary_outcome"])}.</p>
<h2>8. Limitations</h2>
<ul>{"".join(f"<li>{_escape(item)}</li>" for item in LIMITATIONS)}</ul>
<h2>Appendix: the plan and the evidence hash</h2>
<p>Plan SHA-256: <code id="plan-sha256">{_escape(plan_sha256)}</code></p>
<p>Evidence SHA-256 (of the manifest lines of every data file in the bundle; <code>llm-mia verify</code> checks it):
<code id="evidence-sha256">{_escape(evidence_sha256)}</code></p>
<pre>{plan_text}</pre>
</body>
</html>
"""
