"""`llm-mia dataset-test` end to end on tiny models, through main([...])."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from tiny_models import make_tiny_model

import llm_mia.scoring.pipeline as scoring_module
from llm_mia.cli import main


def _story(rng: random.Random, sentences: int) -> str:
    """Suspect and control texts of the same kind: one sentence template, made-up words and numbers, so no two
    texts share a phrase by chance (a shared phrase would be copied text, which the command refuses)."""

    def word() -> str:
        return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 3)))

    return " ".join(f"The {word()} {word()} saw {rng.randint(2, 9999)} {word()}s." for _ in range(sentences))


@pytest.fixture(scope="module")
def works(tmp_path_factory) -> tuple[Path, Path]:
    """A suspect work of 4 chapter files and 24 control works (one file each), written by the same generator."""
    root = tmp_path_factory.mktemp("works")
    rng = random.Random(0)
    for name, files in (("suspect", 4), ("control", 24)):
        (root / name).mkdir()
        for index in range(files):
            suffix = ".md" if index % 2 else ".txt"
            (root / name / f"part{index:02d}{suffix}").write_text(_story(rng, 12), encoding="utf-8")
    return root / "suspect", root / "control"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("llama"), "llama", max_positions=64)


def _args(model: Path, works: tuple[Path, Path], output: Path, *extra: str) -> list[str]:
    suspect, control = works
    return [
        "dataset-test",
        "--cache-dir",
        str(output.parent / "stats-cache"),
        "--model",
        str(model),
        "--suspect",
        str(suspect),
        "--control",
        str(control),
        "--passage-tokens",
        "24",
        "--scorers",
        "loss",
        "min_k",
        "--output-dir",
        str(output),
        "--device",
        "cpu",
        "--no-progress",
        *extra,
    ]


@pytest.mark.slow
def test_dataset_test_end_to_end_writes_a_traceable_report(tiny_llama, works, tmp_path, capsys, monkeypatch):
    extraction_calls = []
    real_extract_views = scoring_module.extract_views

    def counting_extract_views(documents, views, **kwargs):
        extraction_calls.append((len(documents), list(views)))
        return real_extract_views(documents, views, **kwargs)

    monkeypatch.setattr(scoring_module, "extract_views", counting_extract_views)
    output = tmp_path / "report"
    assert main(_args(tiny_llama, works, output, "--splits", "3")) == 0
    printed = capsys.readouterr().out

    # what the user reads: the design, the test, every safeguard, the assumption, the verdict
    assert "design: work-level (1 suspect work(s) against 24 control works" in printed
    assert "work-level test: suspect " in printed and "over 25 labellings (every labelling" in printed
    for guard in ("difference from the control works", "passage lengths", "format", "work sizes", "negative control"):
        assert f"safeguard {guard}: " in printed
    assert "assumption: had the suspect work not been trained on" in printed
    assert "what the checks cannot see: the checks compare texts" in printed
    verdict_line = next(line for line in printed.splitlines() if line.startswith("verdict"))
    assert verdict_line.startswith(
        ("verdict: consistent with training on this work (", "verdict: not distinguishable from the control works")
    ) or verdict_line.startswith("verdict: verdict withheld")
    assert "prove" not in printed

    report = json.loads((output / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    passages = [json.loads(line) for line in (output / "passages.jsonl").read_text().splitlines()]
    scores = [json.loads(line) for line in (output / "scores.jsonl").read_text().splitlines()]
    n_suspect = sum(p["set"] == "suspect" for p in passages)
    n_control = sum(p["set"] == "control" for p in passages)
    # suspect and control passages extracted together, one view (loss, min_k read the target), block by block
    assert sum(n for n, _ in extraction_calls) == n_suspect + n_control
    assert all(n <= 256 and views == ["target"] for n, views in extraction_calls)
    # every passage on both sides has exactly the asked number of tokens
    assert {p["token_end"] - p["token_start"] for p in passages} == {24}
    assert {p["work"] for p in passages if p["set"] == "suspect"} == {"suspect"}
    assert len({p["work"] for p in passages if p["set"] == "control"}) == 24

    assert report["features"] == ["loss", "min_k"]
    assert report["result"]["design"] == "work-level" and report["result"]["work_test"]["exact"]
    assert report["passages"]["suspect"]["works"] == 1 and report["passages"]["control"]["works"] == 24
    assert report["passages"]["suspect"]["cutting"]["tokens_unused"] >= 0
    assert report["verdict"] in ("consistent", "not distinguishable", "withheld")
    assert report["models"]["target"]["adds_bos"] is True
    assert report["settings"]["passage_tokens"] == 24 and report["settings"]["suspect_works"] == "one"

    # every passage maps back to its file, and its scores sit in scores.jsonl under the same id
    suspect_dir, control_dir = works
    by_id = {row["id"]: row for row in scores}
    for passage in passages:
        directory = suspect_dir if passage["set"] == "suspect" else control_dir
        source_text = (directory / passage["source"]).read_text(encoding="utf-8")
        text = source_text[passage["char_start"] : passage["char_end"]]
        assert text.strip()
        row = by_id[f"{passage['set']}:{passage['id']}"]
        assert row["group"] == passage["work"] and row["label"] == (1 if passage["set"] == "suspect" else 0)
        assert row["n_bytes"] == len(text.encode("utf-8")) and row["text_sha256"] == passage["text_sha256"]
        assert passage["scored"] == (row["status"] == "ok") and (passage["scored"] or not passage["in_test"])
    assert (output / "scores.jsonl.run.json").is_file()
    assert (output / "work_test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (output / "summary.md").read_text()
    assert summary.startswith("# Dataset-level membership test") and "**Verdict:**" in summary

    # a second run refuses to overwrite the report unless asked, and reuses every passage's stats
    assert main(_args(tiny_llama, works, output)) == 2
    assert "report.json exists; pass --overwrite" in capsys.readouterr().err
    assert main(_args(tiny_llama, works, output, "--overwrite", "--splits", "2")) == 0
    rerun = json.loads((output / "report.json").read_text())
    assert rerun["execution"]["cache"]["stored"] == 0 < report["execution"]["cache"]["stored"]


@pytest.mark.slow
def test_one_control_source_gives_no_verdict_of_training(tiny_llama, works, tmp_path, capsys):
    suspect, control = works
    one_file = tmp_path / "later_chapters.txt"
    one_file.write_text("\n\n".join(p.read_text(encoding="utf-8") for p in sorted(control.iterdir())))
    assert main(_args(tiny_llama, (suspect, one_file), tmp_path / "report", "--splits", "3")) == 0
    printed = capsys.readouterr().out
    assert "design: passage-level (1 control work(s)" in printed
    assert "qualification: between-work differences are not controlled" in printed
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["verdict"] in ("inconclusive", "not distinguishable", "withheld")
    assert (tmp_path / "report" / "p_value_curve.png").is_file()


def test_texts_on_both_sides_and_length_sensitive_scorers_are_refused(tiny_llama, works, tmp_path, capsys):
    suspect, _ = works
    assert main(_args(tiny_llama, (suspect, suspect), tmp_path / "out")) == 2
    assert "appear in both the suspect and the control input" in capsys.readouterr().err
    args = _args(tiny_llama, works, tmp_path / "out")
    args[args.index("min_k")] = "zlib"
    assert main(args) == 2
    assert "zlib change with passage length" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_too_few_passages_is_an_error_naming_the_counts(tiny_llama, works, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("The old keeper.")  # a handful of tokens: one passage
    _, control = works
    args = _args(tiny_llama, (short, control), tmp_path / "out")
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "--suspect gives 0 passage(s) of 24 tokens; 1 of 1 source(s) are shorter than one passage" in error
    assert "at least 8 suspect and 16 control" in error
    assert not (tmp_path / "out").exists()


def test_too_few_control_passages_fail_before_any_scoring(tiny_llama, works, tmp_path, capsys, monkeypatch):
    # the test needs 2 x 8 control passages: 10 must be refused before the model scores anything
    suspect, _ = works
    control = tmp_path / "control.jsonl"
    text = "The quiet river ran past the old mill and the farmer watched."  # 24-47 tokens: one passage
    control.write_text("".join(json.dumps({"id": f"c{i}", "text": f"{i} {text}"}) + "\n" for i in range(10)))

    def no_scoring(*args, **kwargs):
        raise AssertionError("passages were scored although the test cannot run")

    monkeypatch.setattr(scoring_module, "extract_views", no_scoring)
    assert main(_args(tiny_llama, (suspect, control), tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert "--control gives 10 passage(s)" in error and "at least 8 suspect and 16 control" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--passage-tokens", "16", "--passage-stride", "32"], "passage stride 32 is not in 1..16"),
        (["--alpha", "0"], "alpha 0.0 is not in (0, 1)"),
        (["--splits", "0"], "splits 0 must be >= 1"),
        (["--scorers", "los"], "unknown scorer 'los'"),
    ],
)
def test_bad_settings_fail_before_any_work(works, tmp_path, capsys, extra, message):
    # the model path does not exist: these errors must come before the model is loaded
    assert main([*_args(tmp_path / "no-model", works, tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_missing_work_names_the_path(tiny_llama, works, tmp_path, capsys):
    _, control = works
    assert main(_args(tiny_llama, (tmp_path / "nowhere", control), tmp_path / "out")) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err


def _fine_tune(model_dir: Path, texts: list[str], output: Path, *, steps: int = 300) -> Path:
    """Train the tiny model on the suspect texts (overlapping 48-token chunks, full batch, Adam)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = [token for text in texts for token in tokenizer(text)["input_ids"]]
    chunks = torch.tensor([ids[i : i + 48] for i in range(0, len(ids) - 48, 24)])  # (n_chunks, 48)
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        model(input_ids=chunks, labels=chunks).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output


@pytest.mark.slow
def test_a_model_trained_on_the_suspect_work_is_flagged(works, tmp_path, capsys):
    suspect, _ = works
    base = make_tiny_model(tmp_path / "base", "gpt2", max_positions=64)
    texts = [path.read_text(encoding="utf-8") for path in sorted(suspect.iterdir())]
    trained = _fine_tune(base, texts, tmp_path / "trained")
    assert main(_args(trained, works, tmp_path / "report")) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["verdict"] == "consistent", capsys.readouterr().out
    assert report["result"]["work_test"]["p_value"] <= 0.05 and report["result"]["design"] == "work-level"
    assert not any(guard["fired"] for guard in report["result"]["safeguards"])


@pytest.mark.slow
def test_a_random_split_packaged_as_one_file_against_documents_is_not_called_trained(tmp_path, capsys):
    """The review's case on the real model: Wikipedia paragraphs split at random, one half as one .txt file,
    the other as a JSONL of paragraphs. Before the work-level design: "consistent with training, p = 3.4e-18"."""
    from llm_mia.io.corpora import wikipedia_summaries

    summaries = wikipedia_summaries()
    titles = sorted(summaries)
    random.Random(7).shuffle(titles)
    pool = [t for t in titles if 60 <= len(summaries[t].split()) <= 140][:80]
    (tmp_path / "suspect.txt").write_text("\n\n".join(summaries[t] for t in pool[:40]), encoding="utf-8")
    (tmp_path / "control.jsonl").write_text(
        "".join(json.dumps({"id": t, "text": summaries[t]}) + "\n" for t in pool[40:]), encoding="utf-8"
    )
    args = [
        "dataset-test",
        "--suspect",
        str(tmp_path / "suspect.txt"),
        "--control",
        str(tmp_path / "control.jsonl"),
        "--passage-tokens",
        "48",
        "--scorers",
        "loss",
        "min_k",
        "min_k_plus_plus",
        "--device",
        "cpu",
        "--no-progress",
        "--no-cache",
        "--splits",
        "4",
        "--output-dir",
        str(tmp_path / "report"),
    ]
    assert main(args) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["result"]["design"] == "work-level"
    assert report["verdict"] != "consistent", capsys.readouterr().out
    lengths = next(g for g in report["result"]["safeguards"] if g["name"] == "passage lengths")
    assert not lengths["fired"]


@pytest.mark.slow
def test_reference_gap_scores_both_models_and_tests_their_difference(tiny_llama, works, tmp_path, capsys):
    """With --reference the statistic is the gap: every scorer under both models, the target's minus the
    reference's, tested; the text checks are reported (not withholding) and the reference alone beside it."""
    reference = make_tiny_model(tmp_path / "reference", "llama", max_positions=64, seed=1)
    output = tmp_path / "report"
    assert main(_args(tiny_llama, works, output, "--reference", str(reference), "--splits", "2")) == 0
    printed = capsys.readouterr().out
    assert "statistic: the target's scores minus the reference model's" in printed
    assert "reference model alone: p = " in printed
    assert "assumption: the reference model did not see the suspect work" in printed
    report = json.loads((output / "report.json").read_text())
    assert report["settings"]["statistic"] == "reference-gap"
    assert report["features"] == ["loss gap", "min_k gap"]
    assert report["result"]["statistic"] == "reference-gap"
    if report["verdict"] in ("consistent", "not distinguishable"):
        assert "react alike" in report["verdict_sentence"]
    text_checks = [
        s for s in report["result"]["safeguards"] if s["name"] in ("difference from the control works", "format")
    ]
    assert text_checks and not any(s["withholds"] for s in text_checks)
    rows = [json.loads(line) for line in (output / "scores.jsonl").read_text().splitlines()]
    ok = [row for row in rows if row["status"] == "ok"]
    assert ok and all(row["loss gap"] == pytest.approx(row["loss"] - row["ref:loss"]) for row in ok)
    assert 0 < report["reference_alone"]["p_value"] <= 1
    # the statistic can be forced back to the target's scores, and a gap without a reference is refused
    assert (
        main(_args(tiny_llama, works, tmp_path / "plain", "--reference", str(reference), "--statistic", "scores")) == 0
    )
    assert json.loads((tmp_path / "plain" / "report.json").read_text())["features"] == ["loss", "min_k"]
    assert main(_args(tiny_llama, works, tmp_path / "refused", "--statistic", "reference-gap")) == 2
    assert "subtracts a reference model's scores" in capsys.readouterr().err


def test_passages_mostly_copied_from_the_other_side_are_refused_as_the_plan_refuses_them(
    tiny_llama, works, tmp_path, capsys
):
    """A control file that quotes most of a suspect chapter: refused before scoring, every offending passage
    counted and the first named, the same rule `llm-mia plan` applies."""
    suspect, control = works
    copied = tmp_path / "control"
    copied.mkdir()
    for path in sorted(control.iterdir()):
        (copied / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    chapter = (suspect / "part00.txt").read_text(encoding="utf-8")
    (copied / "quotes.txt").write_text("As the book says: " + chapter[: len(chapter) * 3 // 4], encoding="utf-8")
    # passages long enough in characters to fingerprint (the tiny tokenizer spends a token on a character or two)
    assert main(_args(tiny_llama, (suspect, copied), tmp_path / "out", "--passage-tokens", "60")) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert ("text found verbatim on the other side: " in error or "appear in both" in error) and "quotes.txt" in error
    assert "remove the shared text" in error and not (tmp_path / "out").exists()
