"""The extraction report: one self-contained HTML page (the rules of ``llm_mia.evidence.report_html``: no
external request, figures as data URIs, fixed wording per verdict) for an extraction test carried out from a
plan. It shows the verdict, the passages the model continued verbatim beside the original with the matching
text highlighted, the match-length distribution of the work against the control works and the reference model,
the checks, the method and the limitations. The page is ``templates/extraction.html.j2``."""

from __future__ import annotations

from typing import Any

from llm_mia.evidence.report_html import ANSWERS, chance_in_words
from llm_mia.evidence.report_page import render_page
from llm_mia.stats.metrics import p_phrase

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
    suspect = sorted(
        (r for r in rows if r["set"] == "suspect"),
        key=lambda r: (not (r["match_tokens"] >= evidence["min_match"] and not r["formulaic"]), -r["match_tokens"]),
    )
    return render_page(
        "extraction.html.j2",
        plan=plan,
        plan_sha256=plan_sha256,
        evidence_sha256=evidence_sha256,
        results=results,
        title=title,
        alpha=alpha,
        explanation=explanation.format(alpha=alpha),
        p_words=p_phrase(p),
        chance=chance_in_words(p),
        inference=inference,
        evidence=evidence,
        settings=plan["settings"],
        passages=results["passages"],
        reference=plan["models"].get("reference", {}).get("name"),
        pairs=[{**r, "same": common_prefix(r["target_text"], r["generated_text"])} for r in suspect[:shown]],
        formulaic=evidence["formulaic"],
        guards=inference["safeguards"],
        figures=figures,
        method=METHOD,
        limitations=LIMITATIONS,
    )
