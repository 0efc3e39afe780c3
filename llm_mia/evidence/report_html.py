"""The evidence report: one self-contained HTML page for a reader who is not a statistician.

Figures are embedded as data URIs; there are no external fonts, scripts or requests, and a
Content-Security-Policy meta tag forbids them (``default-src 'none'``), so the page shows the same thing
offline, in ten years, on the other side's computer. Order: the question; the answer in one sentence with its
strength (fixed wording, never "proves"); what was compared with what; the result; the checks that could
have failed; methods with formulas and citations; limitations in plain words; the plan and the evidence hash
in an appendix.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from llm_mia.stats.metrics import format_p_value, p_phrase
from llm_mia.stats.work_test import WHOLE_SUSPECT

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """<style>
body { font-family: serif; max-width: 52em; margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #111; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #888; margin-top: 1.6em; }
.answer { border: 2px solid #333; padding: 0.8em 1em; margin: 1em 0; }
.answer .verdict { font-size: 1.25em; font-weight: bold; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #aaa; padding: 0.3em; vertical-align: top; }
td.passed { color: #064; } td.failed { color: #a00; font-weight: bold; }
figure { margin: 1em 0; } img { max-width: 100%; } figcaption { font-size: 0.9em; color: #444; }
pre { white-space: pre-wrap; font-size: 0.7em; background: #f4f4f4; padding: 0.5em; }
code { font-size: 0.85em; word-break: break-all; }
</style>"""

# The answer, in fixed wording per verdict: the report never says more than the test supports.
ANSWERS = {
    "consistent": (
        "Consistent with training on this work",
        "Under the model, this work scores higher than comparable works the model cannot have seen, by more than "
        "chance explains at the {alpha} level. This is what training on the work would produce; it is evidence "
        "with a stated error rate, not proof.",
    ),
    "not distinguishable": (
        "Not distinguishable from the control works",
        "The work scores no differently from comparable works the model cannot have seen, beyond what chance "
        "explains at the {alpha} level. This does not show that the work was not used: a model can be trained on "
        "a text and keep too little of it for this test to see.",
    ),
    "inconclusive": (
        "Inconclusive",
        "The comparison available (too few separate control works) cannot tell training apart from the ordinary "
        "differences between one work and another, so no answer about training is given.",
    ),
    "withheld": (
        "No answer: a check on the comparison failed",
        "One of the checks that protect the comparison failed (see below), so the test's result cannot be read "
        "as evidence about training.",
    ),
}

API_LIMITATIONS = [
    "The model was asked through an API: its weights were not available. It is identified by the name the API "
    "reported and by a fingerprint of its answer to a fixed probe, both recorded in the plan and checked before "
    "the run; a provider can still change what it serves between runs, and the fingerprint detects only changes "
    "that alter that answer. The API's tokenizer is unknown: passages were cut with the tokenizer named in the "
    "plan, and the API scored each passage as text.",
]

LIMITATIONS = [
    "A membership test compares how well the model predicts the work with how well it predicts comparable "
    "works it cannot have seen. It can show that the work is predicted better than chance would explain; it "
    "cannot show how the model came to predict it so well (training on the work itself, on quotations of it, on "
    "summaries or on closely related text all leave similar traces).",
    "The result rests on the control works being a fair comparison: separate works of the same kind that the "
    "model cannot have seen. If the control works differ from the suspect work in genre, era, language or "
    "format, that difference can produce a signal that looks like training. The checks below look for such "
    "differences, but no check can prove their absence.",
    "The model tested must be the model in question: the numbers hold for the exact files listed (their SHA-256 "
    "hashes are in the plan). A deployed model behind an interface, a later version or a quantised copy can "
    "differ.",
    "Fine-tuned models retain far more of their training text than models pretrained once on trillions of "
    "words: a 'not distinguishable' result on a large pretrained model is common even for text it saw.",
    "The p-value is the chance of a result at least this strong if the work had not been trained on; it is "
    "not the chance that the work was trained on.",
]

METHODS = [
    (
        "Per-passage scores",
        "The work and every control work are cut into passages of exactly the same number of tokens. For each "
        "passage the model's next-token log-probabilities l_t give scores such as the mean log-likelihood "
        "(-NLL = (1/T) &Sigma; l_t; Yeom et al. 2018), Min-K% (the mean of the lowest k&middot;T values; Shi et "
        "al. 2023) and Min-K%++ (the same on z_t = (l_t - &mu;_t) / &sigma;_t; Zhang et al. 2024). Higher = more "
        "like training text.",
    ),
    (
        "Combined score",
        "Per random half of each work's passages, a non-negative weighted combination of the standardised scores "
        "is fitted to tell the suspect work from the control works (Maini et al. 2024, 'LLM Dataset "
        "Inference'); it is applied to the other half.",
    ),
    (
        "Work-level permutation test",
        "Each work's mean combined score on its held-out half is put in units of the spread a work's mean has "
        "when nothing sets it apart (the differences between works plus its own sampling error); the statistic is "
        "the suspect work's standardised mean minus the control works'. The same computation is repeated with each "
        "work in turn labelled as the suspect; the p-value is the share of labellings scoring at least as high as "
        "the real one (a randomisation test, exact when the works are exchangeable and enter with as many "
        "passages, conservative when control works are shorter than the suspect). With one suspect work and m "
        "control works the smallest possible p is 1/(m + 1).",
    ),
    (
        "Safeguards",
        "Passage lengths compared; format (bytes per word, compressibility) compared against the control works "
        "(robust z); a model-free check of whether the suspect work is more different from the control works than "
        "they are from each other, on the passages the test reads (word and character patterns, and the vocabulary "
        "the control works share; Das et al. 2024 for the features); a negative control comparing two halves of "
        "the control works by the same test. The checks compare texts, not what the model knows: a difference "
        "that leaves the wording alike is not seen by them.",
    ),
]


def chance_in_words(p: float) -> str:
    """A p-value as a frequency a lay reader can picture, no more precise than it is.

    >>> chance_in_words(0.028), chance_in_words(0.5), chance_in_words(0.004), chance_in_words(1e-9)
    ('about 3 times in 100', 'about 50 times in 100', 'about once in 250', 'less than once in a million')
    """
    if p >= 0.01:
        return f"about {round(p * 100)} times in 100"
    if p >= 1e-6:
        return f"about once in {float(f'{1 / p:.2g}'):,.0f}"
    return "less than once in a million"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_report(
    *,
    plan: dict[str, Any],
    plan_sha256: str,
    results: dict[str, Any],
    figures: dict[str, bytes],
    evidence_sha256: str,
) -> str:
    """The report as one HTML string (module docstring). ``figures``: caption -> PNG bytes."""
    verdict = results["verdict"]
    inference = results["result"]
    alpha = f"{inference['alpha']:g}"
    title, explanation = ANSWERS[verdict]
    work = inference.get("work_test")
    models = plan["models"]
    target = models["target"]
    inputs = plan["inputs"]
    suspect_works = sorted({s["work"] for s in inputs["suspect"]["sources"]})
    control_works = sorted({s["work"] for s in inputs["control"]["sources"]})
    strength = ""
    if work is not None:
        strength = (
            f"{p_phrase(work['p_value'])}: if the work had not been trained on, a result at least this "
            f"strong would arise by chance {chance_in_words(work['p_value'])} (the smallest p possible here is "
            f"{format_p_value(work['smallest_possible_p'])}, with {work['n_control_works']} control works)."
        )
    checks = [
        (guard["name"], "failed" if guard["fired"] else ("passed" if guard["ran"] else "not run"), guard["detail"])
        for guard in inference["safeguards"]
    ]
    checks.insert(
        0,
        (
            "plan and inputs",
            "passed",
            f"every model file, source file and passage matched the plan "
            f"(plan SHA-256 {plan_sha256}) before any score was computed",
        ),
    )
    rows = "".join(
        f"<tr><td>{_escape(name)}</td><td class='{state.replace(' ', '-')}'>{_escape(state)}</td>"
        f"<td>{_escape(detail)}</td></tr>"
        for name, state, detail in checks
    )
    figures_html = "".join(
        f"<figure><img src='{_data_uri(png)}' alt='{_escape(caption)}'><figcaption>{_escape(caption)}</figcaption>"
        f"</figure>"
        for caption, png in figures.items()
    )
    if "base_url" in target:  # a model behind an API
        check = target.get("agreement_check")
        agreement = (
            "compared with white-box scores of the same weights: "
            + ("they agree" if check["agrees"] else "they DO NOT agree")
            + f" (checked {check['checked_at']})"
            if check
            else "never compared with white-box scores of the same weights (llm-mia check-backend)"
        )
        model_item = (
            f"<li>Model: <b>{_escape(target['name'])}</b> behind an API at {_escape(target['base_url'])}, reporting "
            f"the model {_escape(str(target['model_version']))}; fingerprint of the weights it served "
            f"<code>{_escape(target['fingerprint'])}</code>; token log-probabilities read in {_escape(target['mode'])} "
            f"mode; {_escape(agreement)}</li>"
        )
    else:
        model_item = (
            f"<li>Model: <b>{_escape(target['name'])}</b> ({_escape(target['architecture'])}, "
            f"{_escape(target['dtype'])}), {len(target['files'])} files, file-list SHA-256 "
            f"<code>{_escape(target['files_sha256'])}</code></li>"
        )
    result_items = [
        model_item,
        f"<li>Suspect work: {_escape(', '.join(suspect_works))}, {len(inputs['suspect']['passages'])} passages of "
        f"{plan['settings']['passage_tokens']} tokens</li>",
        f"<li>Control works: {len(control_works)} separate works, {len(inputs['control']['passages'])} passages"
        + (
            (
                f"; the suspect work entered the test whole ({work['passages_per_work']} passages) and each of the "
                f"{work['n_control_works']} control works with up to as many"
                if work["passage_selection"] == WHOLE_SUSPECT
                else f"; every work entered the test with its first {work['passages_per_work']} passages, so the "
                f"{work['n_control_works']} control works with at least that many were compared"
            )
            if work is not None
            else ""
        )
        + "</li>",
        f"<li>Scores: {_escape(', '.join(results['features']))}</li>",
    ]
    if work is not None:
        result_items += [
            f"<li>Work-level test: the suspect work sits <b>{work['statistic']:+.2f}</b> work-level standard "
            f"deviations from the control works on the combined score; <b>{_escape(p_phrase(work['p_value']))}</b> "
            f"over {work['labellings']} labellings</li>",
        ]
    passage = inference["passage_test"]
    result_items.append(
        f"<li>Passage-level test (exploratory): {_escape(p_phrase(passage['p_value']))}, Cohen's d "
        f"{passage['effect_size_cohens_d']['median']:.2f} (median over half-splits)</li>"
    )
    methods = "".join(f"<h3>{_escape(name)}</h3><p>{text}</p>" for name, text in METHODS)
    limitations = "".join(
        f"<li>{_escape(item)}</li>" for item in LIMITATIONS + (API_LIMITATIONS if "base_url" in target else [])
    )
    plan_text = _escape(json.dumps(plan, indent=1, sort_keys=True, ensure_ascii=False))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>Membership test report: {_escape(plan["question"])}</title>
{STYLE}
</head>
<body>
<h1>Was the model trained on this work?</h1>
<h2>1. The question</h2>
<p>{_escape(plan["question"])}</p>
<p>Analyst: {_escape(plan["analyst"])}. Plan fixed on {_escape(plan["created"])} (UTC), before any score was
computed.</p>
<h2>2. The answer</h2>
<div class="answer">
<p class="verdict" id="verdict">{_escape(title)} (alpha = {_escape(alpha)}).</p>
<p id="verdict-sentence">{_escape(results["verdict_sentence"])}</p>
<p>{_escape(explanation.format(alpha=alpha))}</p>
<p id="strength">{_escape(strength)}</p>
</div>
<h2>3. What was compared with what</h2>
<ul>{"".join(result_items[:4])}</ul>
<p>Why the control works are a fair comparison (stated in the plan): {_escape(plan["control_rationale"])}</p>
<h2>4. The result</h2>
<ul>{"".join(result_items[4:])}</ul>
{figures_html}
<h2>5. Checks that could have failed</h2>
<table><tr><th>check</th><th>outcome</th><th>what it found</th></tr>{rows}</table>
<h2>6. Methods</h2>
{methods}
<p>The primary outcome was declared in the plan: {_escape(plan["primary_outcome"])}.</p>
<h2>7. Limitations</h2>
<ul>{limitations}</ul>
<h2>Appendix: the plan and the evidence hash</h2>
<p>Plan SHA-256: <code id="plan-sha256">{_escape(plan_sha256)}</code></p>
<p>Evidence SHA-256 (of the manifest lines of every data file in the bundle; <code>llm-mia verify</code> checks it):
<code id="evidence-sha256">{_escape(evidence_sha256)}</code></p>
<pre>{plan_text}</pre>
</body>
</html>
"""
