"""The evidence report: one self-contained HTML page for a reader who is not a statistician.

Figures are embedded as data URIs; there are no external fonts, scripts or requests, and a
Content-Security-Policy meta tag forbids them (``default-src 'none'``), so the page shows the same thing
offline, in ten years, on the other side's computer. Order: the question; the answer in one sentence with its
strength (fixed wording, never "proves"); what was compared with what; the result; the checks that could
have failed; methods with formulas and citations; limitations in plain words; the plan and the evidence hash
in an appendix.
"""

from __future__ import annotations

from typing import Any

from llm_mia.evidence.report_page import render_page
from llm_mia.stats.metrics import format_p_value, p_phrase
from llm_mia.stats.work_test import WHOLE_SUSPECT

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


def render_report(
    *,
    plan: dict[str, Any],
    plan_sha256: str,
    results: dict[str, Any],
    figures: dict[str, bytes],
    evidence_sha256: str,
) -> str:
    """The report as one HTML string (module docstring; the page is ``templates/dataset.html.j2``).
    ``figures``: caption -> PNG bytes."""
    inference = results["result"]
    alpha = f"{inference['alpha']:g}"
    title, explanation = ANSWERS[results["verdict"]]
    work = inference.get("work_test")
    target = plan["models"]["target"]
    inputs = plan["inputs"]
    strength = ""
    if work is not None:
        strength = (
            f"{p_phrase(work['p_value'])}: if the work had not been trained on, a result at least this "
            f"strong would arise by chance {chance_in_words(work['p_value'])} (the smallest p possible here is "
            f"{format_p_value(work['smallest_possible_p'])}, with {work['n_control_works']} control works)."
        )
    checks = [
        (
            "plan and inputs",
            "passed",
            f"every model file, source file and passage matched the plan "
            f"(plan SHA-256 {plan_sha256}) before any score was computed",
        )
    ]
    checks += [
        (guard["name"], "failed" if guard["fired"] else ("passed" if guard["ran"] else "not run"), guard["detail"])
        for guard in inference["safeguards"]
    ]
    api = "base_url" in target  # a model behind an API
    agreement = None
    if api:
        check = target.get("agreement_check")
        agreement = (
            "compared with white-box scores of the same weights: "
            + ("they agree" if check["agrees"] else "they DO NOT agree")
            + f" (checked {check['checked_at']})"
            if check
            else "never compared with white-box scores of the same weights (llm-mia check-backend)"
        )
    passage = inference["passage_test"]
    return render_page(
        "dataset.html.j2",
        plan=plan,
        plan_sha256=plan_sha256,
        evidence_sha256=evidence_sha256,
        results=results,
        title=title,
        alpha=alpha,
        explanation=explanation.format(alpha=alpha),
        strength=strength,
        api=api,
        agreement=agreement,
        target=target,
        suspect_works=sorted({s["work"] for s in inputs["suspect"]["sources"]}),
        control_works=sorted({s["work"] for s in inputs["control"]["sources"]}),
        suspect_passages=len(inputs["suspect"]["passages"]),
        control_passages=len(inputs["control"]["passages"]),
        passage_tokens=plan["settings"]["passage_tokens"],
        work=work,
        whole_suspect=work is not None and work["passage_selection"] == WHOLE_SUSPECT,
        work_p=None if work is None else p_phrase(work["p_value"]),
        passage_p=p_phrase(passage["p_value"]),
        passage_d=passage["effect_size_cohens_d"]["median"],
        figures=figures,
        checks=checks,
        methods=METHODS,
        limitations=LIMITATIONS + (API_LIMITATIONS if api else []),
    )
