"""Evidence preparation end to end on a tiny model: `llm-mia plan`, `llm-mia evidence run`, `llm-mia verify`.

Every tampering a bundle can suffer is tried on a copy of one real bundle, and `verify` must fail naming what
changed; the report is rendered in a real headless Chromium (Debian's binary, driven by Playwright).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest
from tiny_models import make_tiny_model

from llm_mia.cli import main
from llm_mia.evidence.browser import find_chromium

# Every test reads the bundle the `case` fixture writes, whose report.pdf Chromium prints: a browser each time.
pytestmark = pytest.mark.browser

RATIONALE = "other stories from the same generator, written after the model was trained and never published"


def _story(rng: random.Random, sentences: int) -> str:
    """Texts of one kind: made-up words and numbers, so no two texts share a phrase by chance."""

    def word() -> str:
        return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 3)))

    return " ".join(f"The {word()} {word()} saw {rng.randint(2, 9999)} {word()}s." for _ in range(sentences))


def _write_works(root: Path, suspect_files: int = 4, control_files: int = 24) -> tuple[Path, Path]:
    rng = random.Random(0)
    for name, files in (("suspect", suspect_files), ("control", control_files)):
        (root / name).mkdir(parents=True)
        for index in range(files):
            (root / name / f"part{index:02d}.txt").write_text(_story(rng, 12), encoding="utf-8")
    return root / "suspect", root / "control"


def _plan_args(model: Path, suspect: Path, control: Path, output: Path, *extra: str) -> list[str]:
    return [
        "plan",
        "--model",
        str(model),
        "--suspect",
        str(suspect),
        "--suspect-works",
        "one",
        "--control",
        str(control),
        "--passage-tokens",
        "32",
        "--scorers",
        "loss",
        "min_k:k=0.2",
        "--question",
        "Was the tiny model trained on the suspect stories?",
        "--analyst",
        "Test Analyst, llm-mia",
        "--control-rationale",
        RATIONALE,
        "--output",
        str(output),
        *extra,
    ]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rehash_manifest(bundle: Path) -> None:
    """What a careful forger does after an edit: recompute MANIFEST.sha256 so it matches again."""
    names = sorted(p.name for p in bundle.iterdir() if p.is_file() and p.name != "MANIFEST.sha256")
    (bundle / "MANIFEST.sha256").write_text("".join(f"{_sha(bundle / n)}  {n}\n" for n in names), encoding="utf-8")


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict[str, Path]:
    """A plan and its bundle (with the PDF) on a tiny llama and 1 suspect work against 24 control works."""
    root = tmp_path_factory.mktemp("evidence")
    model = make_tiny_model(root / "model", "llama", max_positions=64)
    suspect, control = _write_works(root / "texts")
    plan = root / "plan.json"
    assert main(_plan_args(model, suspect, control, plan)) == 0
    bundle = root / "bundle"
    assert main(["evidence", "run", str(plan), "--output-dir", str(bundle), "--cache-dir", str(root / "cache")]) == 0
    return {"root": root, "model": model, "suspect": suspect, "control": control, "plan": plan, "bundle": bundle}


def _verify(bundle: Path, capsys, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", str(bundle), *extra])
    return code, capsys.readouterr().out


def _refused(args: list[str], capsys) -> str:
    """Run a command that must be refused (exit 2); returns its error message, whitespace collapsed."""
    capsys.readouterr()
    assert main(args) == 2
    return " ".join(capsys.readouterr().err.split())


def _copy(case: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(case["bundle"], copy)
    return copy


def test_plan_fixes_models_inputs_and_settings(case):
    plan = json.loads(case["plan"].read_text(encoding="utf-8"))
    sidecar = (case["root"] / "plan.json.sha256").read_text(encoding="utf-8")
    assert sidecar == f"{_sha(case['plan'])}  plan.json\n"
    files = {f["path"]: f for f in plan["models"]["target"]["files"]}
    assert files["model.safetensors"]["sha256"] == _sha(case["model"] / "model.safetensors")
    assert plan["models"]["target"]["architecture"] == "LlamaForCausalLM"
    suspect = plan["inputs"]["suspect"]
    assert {f["path"] for f in suspect["files"]} == {f"part{i:02d}.txt" for i in range(4)}
    assert {p["work"] for p in suspect["passages"]} == {"suspect"}
    assert all(p["token_end"] - p["token_start"] == 32 for p in suspect["passages"])
    assert len({p["work"] for p in plan["inputs"]["control"]["passages"]}) == 24
    assert plan["control_rationale"] == RATIONALE
    assert [s["scorer"] for s in plan["settings"]["scorers"]] == ["loss", "min_k"]
    assert plan["settings"]["alpha"] == 0.05 and isinstance(plan["settings"]["seed"], int)
    assert "torch" in plan["versions"] and "primary" not in plan["primary_outcome"][:0]
    assert plan["settings"]["statistic"] == "scores" and plan["settings"]["passage_selection"] == "whole-suspect"
    # what the design can show, known before any score: 25 labellings, so p cannot go below 1/25
    design = plan["design"]
    assert (design["suspect_works"], design["control_works"], design["labellings"]) == (1, 24, 25)
    assert design["smallest_possible_p"] == pytest.approx(1 / 25) and design["suspect_share_tested"] == 1.0


def test_plan_prints_the_smallest_possible_p_before_scoring(case, tmp_path, capsys, monkeypatch):
    import llm_mia.scoring.pipeline as scoring_module

    def no_scoring(*args, **kwargs):
        raise AssertionError("a plan scores nothing")

    monkeypatch.setattr(scoring_module, "extract_views", no_scoring)
    capsys.readouterr()
    assert main(_plan_args(case["model"], case["suspect"], case["control"], tmp_path / "plan.json")) == 0
    printed = capsys.readouterr().out
    assert (
        "design: 1 suspect work(s) against 24 control works, 25 labellings: the smallest possible p is 0.04" in printed
    )
    assert "power: " in printed


def test_bundle_holds_every_file_and_the_manifest_checks_with_sha256sum(case):
    bundle = case["bundle"]
    names = {p.name for p in bundle.iterdir()}
    expected = {"plan.json", "plan.json.sha256", "results.json", "passages.jsonl", "scores.jsonl", "query-log.jsonl"}
    expected |= {"environment.json", "run.json", "report.html", "report.pdf", "MANIFEST.sha256"}
    assert expected <= names
    assert any(name.endswith(".png") for name in names)
    assert (bundle / "plan.json").read_bytes() == case["plan"].read_bytes()
    results = json.loads((bundle / "results.json").read_text(encoding="utf-8"))
    assert results["plan_sha256"] == _sha(case["plan"])
    assert results["verdict"] in ("consistent", "not distinguishable", "withheld")
    listed = dict(line.split("  ")[::-1] for line in (bundle / "MANIFEST.sha256").read_text().splitlines())
    assert set(listed) == names - {"MANIFEST.sha256"}
    assert all(_sha(bundle / name) == digest for name, digest in listed.items())
    log = [json.loads(line) for line in (bundle / "query-log.jsonl").read_text().splitlines()]
    assert log and log[0]["prev"] == results["plan_sha256"] and [e["n"] for e in log] == list(range(len(log)))
    assert {e["model_sha256"] for e in log} == {
        json.loads(case["plan"].read_text())["models"]["target"]["files_sha256"]
    }
    scored = sum(len(e["documents"]) for e in log)
    assert scored >= len((bundle / "passages.jsonl").read_text().splitlines())  # every passage went through the model
    environment = json.loads((bundle / "environment.json").read_text())
    assert any(p.startswith("torch==") for p in environment["packages"])


def test_untouched_bundle_verifies(case, capsys):
    code, out = _verify(case["bundle"], capsys, "--rescore", "6")
    assert code == 0, out
    for check in ("manifest", "plan", "results", "query log", "report", "passages", "model files", "input files"):
        assert f"pass     {check}:" in out
    assert "pass     rescore: 6 passages" in out and out.rstrip().endswith("verified: every check passed")


def test_verify_without_the_model_says_what_did_not_run(case, tmp_path, capsys):
    code, out = _verify(case["bundle"], capsys, "--model", str(tmp_path / "elsewhere"))
    assert code == 3 and "not run  model files" in out and "FAIL" not in out


@pytest.mark.parametrize(
    "name",
    [
        "plan.json",
        "plan.json.sha256",
        "results.json",
        "passages.jsonl",
        "scores.jsonl",
        "query-log.jsonl",
        "environment.json",
        "run.json",
        "report.html",
        "report.pdf",
        "MANIFEST.sha256",
        "work_test.png",
    ],
)
def test_one_changed_byte_in_any_file_fails_naming_it(case, tmp_path, capsys, name):
    bundle = _copy(case, tmp_path)
    path = bundle / name
    data = bytearray(path.read_bytes())
    position = len(data) // 2
    data[position] = ord("0") if data[position] != ord("0") else ord("1")
    path.write_bytes(bytes(data))
    code, out = _verify(bundle, capsys, "--rescore", "0")
    assert code == 1
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failures and name in failures[0], out


def test_added_or_removed_file_fails(case, tmp_path, capsys):
    bundle = _copy(case, tmp_path)
    (bundle / "notes.txt").write_text("added later\n")
    code, out = _verify(bundle, capsys, "--rescore", "0")
    assert code == 1 and "FAIL     manifest: notes.txt is in the bundle but not in MANIFEST.sha256" in out
    (bundle / "notes.txt").unlink()
    (bundle / "environment.json").unlink()
    code, out = _verify(bundle, capsys, "--rescore", "0")
    assert code == 1 and "environment.json is listed in MANIFEST.sha256 but missing" in out


@pytest.mark.parametrize("edit", ["delete", "reorder", "edit", "drop last"])
def test_query_log_edits_break_the_chain_even_with_a_recomputed_manifest(case, tmp_path, capsys, edit):
    bundle = _copy(case, tmp_path)
    path = bundle / "query-log.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) >= 3
    if edit == "delete":
        del lines[1]
    elif edit == "reorder":
        lines[0], lines[1] = lines[1], lines[0]
    elif edit == "edit":
        entry = json.loads(lines[1])
        entry["documents"] = entry["documents"][1:]
        lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    else:
        lines = lines[:-1]
    path.write_text("".join(lines), encoding="utf-8")
    _rehash_manifest(bundle)
    code, out = _verify(bundle, capsys, "--rescore", "0")
    assert code == 1
    failure, *others = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failure.startswith("FAIL     query log: query-log.jsonl")
    # the report names the evidence hash of the data files, the query log among them
    assert others == [line for line in out.splitlines() if line.startswith("FAIL     report: report.html does not")]
    if edit == "drop last":
        assert "run.json records" in failure
    else:
        assert ("line 1 " if edit == "reorder" else "line 2 ") in failure, failure


def test_edited_plan_fails_even_with_its_hash_and_the_manifest_recomputed(case, tmp_path, capsys):
    bundle = _copy(case, tmp_path)
    plan = json.loads((bundle / "plan.json").read_text(encoding="utf-8"))
    plan["settings"]["alpha"] = 0.2
    from llm_mia.evidence.plan import Plan

    edited = Plan(plan)
    edited.write(bundle / "plan.json")  # a new plan with its own, consistent hash
    _rehash_manifest(bundle)
    code, out = _verify(bundle, capsys, "--rescore", "0")
    assert code == 1
    assert f"FAIL     results: results.json names plan {_sha(case['plan'])}, the plan is {edited.sha256}" in out
    assert "FAIL     query log: query-log.jsonl: line 1 breaks the chain" in out


def test_edited_plan_alone_fails_on_its_recorded_hash(case, tmp_path, capsys):
    bundle = _copy(case, tmp_path)
    text = (bundle / "plan.json").read_text(encoding="utf-8")
    (bundle / "plan.json").write_text(text.replace('"alpha": 0.05', '"alpha": 0.1'), encoding="utf-8")
    _rehash_manifest(bundle)
    code, out = _verify(bundle, capsys, "--rescore", "0")
    assert code == 1 and "FAIL     plan: " in out and "does not match its recorded hash" in out


@pytest.fixture(scope="module")
def swapped_model(case, tmp_path_factory) -> Path:
    """The planned model's directory with model.safetensors from another model of the same shape."""
    other = make_tiny_model(tmp_path_factory.mktemp("other") / "model", "llama", max_positions=64, seed=1)
    swapped = tmp_path_factory.mktemp("swapped") / "model"
    shutil.copytree(case["model"], swapped)
    shutil.copyfile(other / "model.safetensors", swapped / "model.safetensors")
    assert _sha(swapped / "model.safetensors") != _sha(case["model"] / "model.safetensors")
    return swapped


def test_swapped_weight_file_fails_verify(case, swapped_model, capsys):
    code, out = _verify(case["bundle"], capsys, "--model", str(swapped_model))
    assert code == 1
    planned = _sha(case["model"] / "model.safetensors")
    assert (
        f"FAIL     model files: target model file 'model.safetensors' changed since the plan: planned SHA-256 "
        f"{planned}, now {_sha(swapped_model / 'model.safetensors')}" in out
    )


def test_evidence_run_refuses_a_changed_model_or_source_before_scoring(
    case, swapped_model, tmp_path, monkeypatch, capsys
):
    import llm_mia.workflows.evidence as evidence_workflow

    def no_scoring(*args, **kwargs):
        raise AssertionError("scoring started")

    monkeypatch.setattr(evidence_workflow, "score_and_test", no_scoring)
    output = tmp_path / "bundle"
    run = ["evidence", "run", str(case["plan"]), "--output-dir", str(output), "--no-pdf"]
    planned = _sha(case["model"] / "model.safetensors")
    message = _refused([*run, "--model", str(swapped_model)], capsys)
    assert (
        f"target model file 'model.safetensors' changed since the plan: planned SHA-256 {planned}, now "
        f"{_sha(swapped_model / 'model.safetensors')} (in {swapped_model})" in message
    )
    control = tmp_path / "control"
    shutil.copytree(case["control"], control)
    changed = control / "part07.txt"
    before = _sha(changed)
    changed.write_text(changed.read_text(encoding="utf-8").replace("The", "A", 1), encoding="utf-8")
    message = _refused([*run, "--control", str(control)], capsys)
    assert (
        f"control source file 'part07.txt' changed since the plan: planned SHA-256 {before}, now {_sha(changed)}"
        in (message)
    )
    (control / "part07.txt").unlink()
    message = _refused([*run, "--control", str(control)], capsys)
    assert "control source file 'part07.txt' is in the plan but missing now" in message
    assert not output.exists() and not Path(f"{output}.partial").exists()


def test_two_runs_of_one_plan_give_identical_results(case, tmp_path):
    again = tmp_path / "again"
    assert main(["evidence", "run", str(case["plan"]), "--output-dir", str(again), "--no-cache", "--no-pdf"]) == 0
    first = case["bundle"]
    for name in ("results.json", "scores.jsonl", "passages.jsonl", "plan.json"):
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    run = json.loads((first / "run.json").read_text())
    assert run["differs_between_runs"][0].startswith("run.json: started, finished, seconds, argv, execution")
    rerun = json.loads((again / "run.json").read_text())
    differing = {key for key in run if run[key] != rerun[key]}
    assert differing <= {"started", "finished", "seconds", "argv", "execution", "query_log"}
    assert run["query_log"]["lines"] == rerun["query_log"]["lines"]

    def untimed(path: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k not in ("time", "prev")} for line in path.open()]

    assert untimed(again / "query-log.jsonl") == untimed(first / "query-log.jsonl")


def test_second_run_into_a_bundle_is_refused_without_overwrite(case, capsys):
    before = {p.name: _sha(p) for p in case["bundle"].iterdir()}
    message = _refused(["evidence", "run", str(case["plan"]), "--output-dir", str(case["bundle"])], capsys)
    assert "exists; pass --overwrite to replace the bundle" in message
    assert {p.name: _sha(p) for p in case["bundle"].iterdir()} == before


def test_edited_plan_is_refused_by_evidence_run(case, tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text(case["plan"].read_text(encoding="utf-8").replace('"alpha": 0.05', '"alpha": 0.5'))
    shutil.copyfile(case["root"] / "plan.json.sha256", tmp_path / "plan.json.sha256")
    message = _refused(["evidence", "run", str(plan), "--output-dir", str(tmp_path / "bundle")], capsys)
    assert f"says {_sha(case['plan'])}, the file hashes to {_sha(plan)}" in message
    assert "a changed plan is a new plan" in message


def test_plan_refuses_bad_inputs(case, tmp_path, capsys):
    model, suspect, control = case["model"], case["suspect"], case["control"]
    output = tmp_path / "plan.json"
    args = _plan_args(model, suspect, control, output)
    short = list(args)
    short[short.index("--control-rationale") + 1] = "same genre"
    assert "--control-rationale: in a sentence or more" in _refused(short, capsys)
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(control.iterdir())[:10]:
        shutil.copyfile(path, few / path.name)
    message = _refused(_plan_args(model, suspect, few, output), capsys)
    assert "the control set has 10 separate work(s)" in message and "needs at least 19" in message
    stolen = (suspect / "part01.txt").read_text(encoding="utf-8")
    copies = {
        "a whole file": (stolen, "1 text(s) appear in both the suspect and the control input"),
        "its first part": (
            stolen[: len(stolen) // 2],
            "appear in both the suspect work and the controls: suspect 'part01.txt#0' = control",
        ),
        "a part off the passage grid": (
            f"Quoted: {stolen[len(stolen) // 3 + 5 :]}",
            "passage(s) are at least 50% text found verbatim on the other side: suspect passage 'part01.txt#",
        ),
    }
    for what, (text, expected) in copies.items():
        overlapping = tmp_path / what.replace(" ", "-")
        shutil.copytree(control, overlapping)
        (overlapping / "part03.txt").write_text(text, encoding="utf-8")
        message = _refused(_plan_args(model, suspect, overlapping, output), capsys)
        assert expected in message, (what, message)
    assert not output.exists()
    output.write_text("{}")
    assert "exists" in _refused(_plan_args(model, suspect, control, output), capsys)


@pytest.mark.skipif(find_chromium() is None, reason="needs Debian's chromium (scripts/setup.sh installs it)")
def test_report_in_a_real_browser(case):
    from pdfminer.high_level import extract_text
    from playwright.sync_api import sync_playwright

    bundle = case["bundle"]
    results = json.loads((bundle / "results.json").read_text(encoding="utf-8"))
    page_url = (bundle / "report.html").resolve().as_uri()
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(),
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_url, wait_until="load")
            page.wait_for_load_state("networkidle")
            widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
            verdict = page.inner_text("#verdict")
            body = page.inner_text("body")
            csp = page.get_attribute("meta[http-equiv='Content-Security-Policy']", "content")
        finally:
            browser.close()
    assert requests == [page_url]  # the page itself, and nothing else leaves it
    assert widths and all(width > 0 for width in widths)
    assert "default-src 'none'" in csp
    title = {
        "consistent": "Consistent with training",
        "not distinguishable": "Not distinguishable from the control works",
    }
    expected = title.get(results["verdict"], "No answer")
    assert verdict.startswith(expected)
    work = results["result"]["work_test"]
    from llm_mia.stats.metrics import p_phrase

    assert p_phrase(work["p_value"]) in body
    assert results["verdict_sentence"] in body
    pdf_text = " ".join(extract_text(str(bundle / "report.pdf")).split())
    assert expected in pdf_text and p_phrase(work["p_value"]) in pdf_text


def test_a_killed_run_resumes_from_the_cache_with_the_same_results(case, tmp_path, monkeypatch):
    from llm_mia.evidence.query_log import QueryLog

    record = QueryLog.record
    calls = {"n": 0}

    def dies_after_three(self, entry):
        record(self, entry)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the analyst pressed Ctrl-C, or the machine went down

    output, cache = tmp_path / "bundle", ["--cache-dir", str(tmp_path / "cache")]
    run = ["evidence", "run", str(case["plan"]), "--output-dir", str(output), "--no-pdf", *cache]
    monkeypatch.setattr(QueryLog, "record", dies_after_three)
    assert main(run) == 130  # interrupted: the CLI says how to resume
    assert not output.exists() and Path(f"{output}.partial").is_dir()  # nothing that looks complete
    monkeypatch.setattr(QueryLog, "record", record)
    assert main(run) == 0
    assert not Path(f"{output}.partial").exists()
    for name in ("results.json", "scores.jsonl", "passages.jsonl"):
        assert (output / name).read_bytes() == (case["bundle"] / name).read_bytes(), name
    events = [json.loads(line)["event"] for line in (output / "query-log.jsonl").open()]
    assert "from cache" in events and "model call" in events  # resumed: the killed run's work was kept
    assert json.loads((output / "run.json").read_text())["execution"]["cache"]["hits"] > 0


def test_full_rerun_reproduces_the_verdict_and_p_value(case, capsys):
    code, out = _verify(case["bundle"], capsys, "--rescore", "0", "--full")
    results = json.loads((case["bundle"] / "results.json").read_text(encoding="utf-8"))
    assert code == 0, out
    assert f"pass     full re-run: verdict {results['verdict']!r}" in out


def test_a_passage_swapped_in_passages_jsonl_is_named(case, tmp_path, capsys):
    bundle = _copy(case, tmp_path)
    path = bundle / "passages.jsonl"
    rows = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(rows[5])
    row["text_sha256"] = "0" * 64
    rows[5] = json.dumps(row)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    _rehash_manifest(bundle)
    code, out = _verify(bundle, capsys, "--rescore", "0")
    assert code == 1
    assert f"FAIL     passages: passages.jsonl:6 ({row['set']} {row['id']}) is not a planned passage" in out


def test_verify_checks_moved_inputs_by_hash(case, tmp_path, capsys):
    control = tmp_path / "control"
    shutil.copytree(case["control"], control)
    code, out = _verify(case["bundle"], capsys, "--rescore", "2", "--control", str(control))
    assert code == 0 and "pass     input files:" in out and "pass     rescore: 2 passages" in out
    (control / "part11.txt").write_text("rewritten after the analysis\n", encoding="utf-8")
    code, out = _verify(case["bundle"], capsys, "--rescore", "0", "--control", str(control))
    assert code == 1 and "FAIL     input files: control source file 'part11.txt' changed since the plan" in out
    code, out = _verify(case["bundle"], capsys, "--rescore", "0", "--control", str(tmp_path / "gone" / "control"))
    assert code == 3 and "not run  input files: the planned inputs are not on this machine" in out


def test_a_plan_in_bfloat16_must_carry_its_precision_check(case, tmp_path, capsys):
    """A lower precision is a choice the other side must see priced before the run: refused without the check; with
    it, the plan records the check (no labels read, so no AUROC: nothing of the result shows) and prints it."""
    model, suspect, control = case["model"], case["suspect"], case["control"]
    output = tmp_path / "plan.json"
    message = _refused(_plan_args(model, suspect, control, output, "--dtype", "bfloat16"), capsys)
    assert "a plan in bfloat16 must name what that precision costs: add --precision-check N" in message
    assert not output.exists()
    assert main(_plan_args(model, suspect, control, output, "--dtype", "bfloat16", "--precision-check", "6")) == 0
    printed = capsys.readouterr().out
    assert "precision: bfloat16 against float32 on 6 passages moved loss up to" in printed
    plan = json.loads(output.read_text())
    check = plan["precision_check"]
    assert plan["settings"]["model"]["dtype"] == "bfloat16" and check["sampled"] == 6
    assert all(s["auroc_float32"] is None and s["auroc_dtype"] is None for s in check["scorers"])
    assert all(s["max_abs_difference"] >= 0 for s in check["scorers"])


def test_a_plan_in_mixed_precision_is_refused_where_bfloat16_is_not_native(case, tmp_path, capsys, monkeypatch):
    """``--dtype mixed`` falls back to float32 on hardware without native bfloat16; a plan's precision check then
    describes another run than the one made, so the run is refused there, before any model loads."""
    from llm_mia.backends import precision

    model, suspect, control = case["model"], case["suspect"], case["control"]
    fast = tmp_path / "fast-cpuinfo"
    fast.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n", encoding="utf-8")
    slow = tmp_path / "slow-cpuinfo"
    slow.write_text("processor\t: 0\nflags\t\t: fpu avx2\n", encoding="utf-8")
    monkeypatch.setattr(precision, "CPU_FLAGS_FILE", fast)
    output = tmp_path / "plan.json"
    args = _plan_args(model, suspect, control, output, "--dtype", "mixed", "--precision-check", "4", "--device", "cpu")
    assert main(args) == 0
    monkeypatch.setattr(precision, "CPU_FLAGS_FILE", slow)
    bundle = tmp_path / "bundle"
    message = _refused(["evidence", "run", str(output), "--output-dir", str(bundle), "--no-pdf"], capsys)
    expected = "this plan runs the model in mixed precision, which this machine's cpu device would run in float32"
    assert expected in message
    assert not bundle.exists()
