"""The HTML reports are rendered from Jinja2 templates with autoescaping on: text from a plan, a result or a
text under test is shown as text, never read as markup, and every page keeps the Content-Security-Policy."""

from __future__ import annotations

import re

from llm_mia.evidence.report_canary import render_canary_report
from llm_mia.evidence.report_page import CSP

HOSTILE = "<script>alert('x')</script> & <img src=http://example.com/x.png>"


def _canary_page() -> str:
    plan = {
        "question": HOSTILE,
        "analyst": "A. Expert",
        "created": "2026-01-01T00:00:00+00:00",
        "primary_outcome": "the combined p-value",
        "models": {"target": {"name": "tiny <b>model</b>", "files_sha256": "f" * 64}},
        "secret": {"sha256": "a" * 64, "canaries": 2, "siblings_per_canary": 19, "generator": "words"},
    }
    results = {
        "alpha": 0.05,
        "verdict": "consistent",
        "verdict_sentence": "consistent with training on the canaries",
        "combined_p_value": 0.0025,
        "scorer": "loss",
        "detected": 2,
        "canaries": 2,
        "assumption": "the canaries were drawn at random",
        "guarantee": "exact",
    }
    per_canary = [
        {"canary": HOSTILE, "rank": 1, "p_value": 0.05, "exposure": 4.32},
        {"canary": "canary-0001", "rank": 1, "p_value": 0.05, "exposure": 4.32},
    ]
    return render_canary_report(
        plan=plan, plan_sha256="b" * 64, results=results, per_canary=per_canary, evidence_sha256="c" * 64
    )


def test_text_from_the_inputs_is_escaped_and_the_page_keeps_its_policy() -> None:
    page = _canary_page()
    assert "<script>" not in page and "<img" not in page and "<b>model</b>" not in page
    assert page.count("&lt;script&gt;") >= 3  # title, question, per-canary row (and the plan in the appendix)
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert "default-src 'none'" in CSP
    # the report's own prose keeps its entities (the method's formula), and numbers are formatted as before
    assert "&Sigma;" in page and "<td>4.3</td>" in page and "1 of 20" in page


def test_the_skeleton_is_shared_and_complete() -> None:
    page = _canary_page()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert re.search(r'<code id="plan-sha256">b{64}</code>', page)
    assert re.search(r'<code id="evidence-sha256">c{64}</code>', page)
    assert '<p class="verdict" id="verdict">Consistent with training on the canaries (alpha = 0.05).</p>' in page
