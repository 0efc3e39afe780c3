"""`llm-mia evaluate`, `llm-mia calibrate` and `llm-mia verdict` end to end through main([...])."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from tiny_models import make_tiny_model

from llm_mia.cli import main
from llm_mia.io.identity import sha256_texts as sha256_documents
from llm_mia.io.records import write_run_record
from llm_mia.io.score_files import write_rows

MODEL_RECORD = {
    "target": {"name": "tiny", "revision": None, "config_sha256": "abc", "tokenizer_id": "tok", "dtype": "float32"}
}


def _row(doc_id, label, status="ok", **scores):
    return {
        "id": doc_id,
        "label": label,
        "group": None,
        "status": status,
        "n_bytes": 40,
        "n_tokens": 10,
        "n_scored": 10,
        "n_windows": 1,
        **scores,
    }


def _record(source, texts, **extra):
    return {
        "input": {"source": str(source), "documents": len(texts), "sha256": sha256_documents(texts)},
        "models": MODEL_RECORD,
        "scorers": [{"column": "loss", "scorer": "loss", "params": {}}],
        "settings": {"batch_size": 8, "window": None, "stride": None},
        **extra,
    }


@pytest.fixture
def shifted_set(tmp_path):
    """60 + 60 labelled documents in two visibly different styles, a score file and a run record."""
    rng = np.random.default_rng(0)
    texts, rows = [], []
    for i in range(120):
        label = int(i < 60)
        topic = rng.choice(["river", "meadow", "orchard"]) if label else rng.choice(["server", "cache", "cluster"])
        texts.append({"id": f"d{i}", "text": f"The {topic} number {i} was quiet today.", "label": label})
        loss = None if i == 3 else float(rng.normal(1.0 * label, 1.0))
        rows.append(_row(f"d{i}", label, "empty text" if i == 3 else "ok", loss=loss, zlib=float(rng.normal())))
    rows.append(_row("unlabelled", None, loss=0.0, zlib=0.0))
    texts_path = tmp_path / "texts.jsonl"
    texts_path.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    scores_path = write_rows(rows, tmp_path / "scores.jsonl")
    all_texts = [t["text"] for t in texts]
    return {"scores": scores_path, "texts": texts_path, "rows": rows, "record_texts": all_texts}


@pytest.mark.slow
def test_evaluate_scores_file_prints_table_and_writes_json_and_plots(shifted_set, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["evaluate", "--scores", str(shifted_set["scores"]), "--input", str(shifted_set["texts"])]
    assert main([*args, "--output-dir", str(out), "--bootstrap", "200"]) == 0
    printed = capsys.readouterr().out
    assert "evaluated 120 labelled documents" in printed and "1 unlabelled ignored" in printed
    for name in ("loss", "zlib", "blind baseline"):
        assert any(line.startswith(name) for line in printed.splitlines())
    assert "(n=60)*" in printed and "TPR@0.1% FPR needs >= 20000 non-members" in printed
    assert "best of 2 scorers tried: loss" in printed
    assert "WARNING: distribution shift" in printed

    report = json.loads((out / "evaluation.json").read_text())
    kept = [r for r in shifted_set["rows"] if r["label"] is not None and r["status"] == "ok"]
    expected = roc_auc_score([r["label"] for r in kept], [r["loss"] for r in kept])
    assert report["scorers"]["loss"]["auroc"] == pytest.approx(expected)
    assert report["scorers"]["loss"]["n_excluded"] == 1
    assert (report["scorers"]["loss"]["n_members"], report["scorers"]["loss"]["n_nonmembers"]) == (59, 60)
    low, high = report["scorers"]["loss"]["auroc_ci"]
    assert low < expected < high
    tpr = {t["target_fpr"]: t for t in report["scorers"]["loss"]["tpr_at_fpr"]}
    # 60 non-members allow 3 false positives at 5%: fewer than 20, so not resolved
    assert tpr[0.001]["resolvable"] is False and tpr[0.05]["resolvable"] is False
    assert tpr[0.05]["n_nonmembers"] == 60 and "bootstrap" in tpr[0.05]["tpr_ci_method"]
    assert report["selection"]["best"] == "loss" and report["selection"]["family_wise_p"]["loss"] < 0.01
    assert report["blind_baseline"]["auroc"] > 0.95
    assert report["warning"] == report["blind_baseline"]["warning"] and report["warning"]
    assert report["scores"]["sha256"] and report["n_unlabelled"] == 1
    for stem in ("roc", "roc_loglog", "histograms"):
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / f"{stem}.svg").read_bytes()[:2000]

    # the output directory is not silently replaced
    assert main([*args, "--output-dir", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_finds_texts_through_the_run_record(shifted_set, capsys):
    scores = shifted_set["scores"]
    write_run_record(scores, _record(shifted_set["texts"], shifted_set["record_texts"]))
    assert main(["evaluate", "--scores", str(scores), "--bootstrap", "100"]) == 0
    printed = capsys.readouterr().out
    assert "target model: tiny" in printed
    assert any(line.startswith("blind baseline  ") for line in printed.splitlines())
    # texts edited since scoring: the baseline is skipped, and the output says why
    shifted_set["texts"].write_text(shifted_set["texts"].read_text().replace("quiet", "loud"), encoding="utf-8")
    assert main(["evaluate", "--scores", str(scores), "--bootstrap", "100"]) == 0
    assert "blind baseline: not run (the texts in" in capsys.readouterr().out


def test_evaluate_errors(shifted_set, tmp_path, capsys):
    assert main(["evaluate", "--scores", str(shifted_set["scores"]), "--scorers", "min_k"]) == 2
    assert "available: loss, zlib" in capsys.readouterr().err
    assert main(["evaluate", "--scores", str(shifted_set["scores"]), "--fpr", "5"]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err
    # an FPR given twice is one column, not a crash
    assert main(["evaluate", "--scores", str(shifted_set["scores"]), "--no-blind", "--fpr", "0.05", "0.05"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("scorer"))
    assert header.count("TPR@5%FPR") == 1
    unlabelled = write_rows([_row("a", None, loss=1.0), _row("b", None, loss=2.0)], tmp_path / "u.jsonl")
    assert main(["evaluate", "--scores", str(unlabelled), "--no-blind"]) == 2
    assert "none of the 2 rows has a label" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_permutes_whole_groups_and_says_so(tmp_path, capsys):
    rng = np.random.default_rng(3)
    rows = []
    for work in range(12):  # 6 member works, 6 non-member works, 4 documents each
        offset, label = rng.normal(), int(work < 6)
        for i in range(4):
            row = _row(f"w{work}d{i}", label, loss=float(offset + rng.normal()), zlib=float(offset + rng.normal()))
            rows.append({**row, "group": f"work{work}"})
    scores = write_rows(rows, tmp_path / "grouped.jsonl")
    out = tmp_path / "eval"
    assert main(["evaluate", "--scores", str(scores), "--no-blind", "--output-dir", str(out), "--bootstrap", "50"]) == 0
    printed = capsys.readouterr().out
    assert "labels of whole groups permuted, 12 groups holding the 48 documents scored by every scorer" in printed
    assert "the 48 labelled documents sit in 12 groups: AUROC and TPR intervals count documents as independent" in (
        printed
    )
    report = json.loads((out / "evaluation.json").read_text())
    assert report["selection"]["permuted"] == "groups (12)" and report["selection"]["warning"] is None
    assert report["n_groups"] == 12 and "sit in 12 groups" in report["notes"]["units"]


def _write_scores(path, prefix, values, *, record_source, labels=None, statuses=None):
    rows = [
        _row(
            f"{prefix}{i}",
            None if labels is None else labels[i],
            "ok" if statuses is None else statuses[i],
            loss=None if v is None else float(v),
        )
        for i, v in enumerate(values)
    ]
    write_rows(rows, path)
    write_run_record(path, _record(record_source, [f"{prefix}{i}" for i in range(len(values))]))
    return path


def test_calibrate_then_verdict_round_trip(tmp_path, capsys):
    rng = np.random.default_rng(1)
    controls = _write_scores(tmp_path / "controls.jsonl", "c", rng.normal(size=300), record_source="controls")
    suspects_values = [5.0, 4.0, 0.0, -1.0, None]
    suspects = _write_scores(
        tmp_path / "suspects.jsonl",
        "s",
        suspects_values,
        record_source="suspects",
        statuses=["ok", "ok", "ok", "ok", "empty text"],
    )
    calibration = tmp_path / "calibration.json"
    args = ["calibrate", "--controls", str(controls), "--fpr", "0.02", "--output", str(calibration)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "calibrated loss at FPR 0.02 on 300 controls (0 of 300 rows excluded" in printed
    assert "guarantee: FPR <= 0.02 on average over sets of 300 controls (marginal)" in printed
    assert main([*args, "--overwrite", "--holdout", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "calibrated loss at FPR 0.02 on 150 controls, 150 held out" in printed
    assert "(Clopper-Pearson)" in printed

    data = json.loads(calibration.read_text())
    fit_ids, heldout_ids = set(data["controls_source"]["fit_ids"]), set(data["controls_source"]["heldout_ids"])
    assert fit_ids.isdisjoint(heldout_ids) and len(fit_ids | heldout_ids) == 300
    fitted = np.array(data["controls"])
    assert len(fitted) == 150
    check = data["fpr_check"]
    assert check["n_controls"] == 150 and check["fpr"] == check["false_positives"] / 150

    output = tmp_path / "verdicts.jsonl"
    verdict_args = ["verdict", "--calibration", str(calibration), "--scores", str(suspects)]
    assert main([*verdict_args, "--adjust", "none", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "consistent with training on these texts" in printed and "prove" not in printed
    verdicts = [json.loads(line) for line in output.read_text().splitlines()]
    assert [v["id"] for v in verdicts] == ["s0", "s1", "s2", "s3", "s4"]
    for verdict, value in zip(verdicts, suspects_values, strict=True):
        if value is None:
            assert verdict["verdict"] == "inconclusive" and verdict["p_value"] is None
            assert "empty text" in verdict["statement"]
            continue
        expected_p = (1 + np.sum(fitted >= value)) / (len(fitted) + 1)
        assert verdict["p_value"] == pytest.approx(expected_p)
        assert verdict["verdict"] == ("member" if expected_p <= 0.02 else "non-member")
    assert verdicts[0]["verdict"] == "member" and verdicts[3]["verdict"] == "non-member"
    assert verdicts[0]["statement"].startswith("consistent with training on this text")
    assert verdicts[3]["statement"].startswith("not distinguishable from the control texts")
    assert (tmp_path / "verdicts.jsonl.run.json").is_file()

    # several documents: Benjamini-Hochberg by default, with adjusted p-values and what they guarantee
    assert main(verdict_args) == 0
    printed = capsys.readouterr().out
    assert "p (BH)" in printed and "false discovery rate controlled at 0.02 across 4 documents" in printed
    # 150 controls, 4 documents at q = 0.02: a discovery needs 2 documents above every control
    assert "at least 2 of them score above every control" in printed


def test_verdict_corrects_over_groups_and_says_so(tmp_path, capsys):
    rng = np.random.default_rng(4)
    controls = _write_scores(tmp_path / "controls.jsonl", "c", rng.normal(size=400), record_source="controls")
    calibration = tmp_path / "calibration.json"
    assert main(["calibrate", "--controls", str(controls), "--fpr", "0.05", "--output", str(calibration)]) == 0
    rows = []
    for work in range(6):  # work 0 trained: its 4 documents far above every control
        for i in range(4):
            value = 10.0 + i if work == 0 else float(rng.normal())
            rows.append({**_row(f"w{work}d{i}", None, loss=value), "group": f"work{work}"})
    suspects = write_rows(rows, tmp_path / "suspects.jsonl")
    write_run_record(suspects, _record("suspects", [r["id"] for r in rows]))
    output = tmp_path / "verdicts.jsonl"
    args = ["verdict", "--calibration", str(calibration), "--scores", str(suspects)]
    assert main([*args, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "correction: Simes within each of 6 groups, Benjamini-Hochberg across the groups" in printed
    assert "p (BH over 6 groups)" in printed and "1 of 6 groups: consistent with training" in printed
    assert "4 of 24 documents called members, all within the 1 group(s) above" in printed
    verdicts = [json.loads(line) for line in output.read_text().splitlines()]
    assert {v["adjusted_over"] for v in verdicts} == {"6 groups"}
    assert [v["verdict"] for v in verdicts[:4]] == ["member"] * 4 and verdicts[0]["group_verdict"] == "member"
    assert verdicts[0]["group"] == "work0" and verdicts[0]["group_p_value"] == pytest.approx(1 / 401)
    record = json.loads((tmp_path / "verdicts.jsonl.run.json").read_text())
    assert record["settings"]["units"] == "groups" and record["adjusted_over"] == "6 groups"
    assert record["group_counts"]["member"] == 1 and len(record["groups"]) == 6

    # over documents when asked: the unit and what it rests on are said
    assert main([*args, "--units", "documents"]) == 0
    printed = capsys.readouterr().out
    assert "false discovery rate controlled at 0.05 across 24 documents" in printed
    assert "the 24 documents sit in 6 groups" in printed and "PRDS" in printed
    # groups asked for where there are none
    plain = _write_scores(tmp_path / "plain.jsonl", "p", [0.0, 1.0], record_source="plain")
    assert main(["verdict", "--calibration", str(calibration), "--scores", str(plain), "--units", "groups"]) == 2
    assert "no group column (or no row has a group)" in capsys.readouterr().err
    assert main([*args, "--units", "groups", "--adjust", "none"]) == 2
    assert "pass --adjust bh, or drop --units groups" in capsys.readouterr().err
    # judged one at a time, the rows still carry their group, and the summary says the errors cluster
    assert main([*args, "--adjust", "none"]) == 0
    assert "false 'member' verdicts come in clusters of a group's documents" in capsys.readouterr().out


def test_calibrate_and_verdict_refuse_unsound_inputs(tmp_path, capsys):
    rng = np.random.default_rng(2)
    labels = [1] * 5 + [0] * 295
    mixed = _write_scores(tmp_path / "mixed.jsonl", "m", rng.normal(size=300), record_source="m", labels=labels)
    calibration = tmp_path / "calibration.json"
    assert main(["calibrate", "--controls", str(mixed), "--output", str(calibration)]) == 2
    assert "5 row(s) are labelled 1 (member)" in capsys.readouterr().err
    assert main(["calibrate", "--controls", str(mixed), "--controls-from-labels", "--output", str(calibration)]) == 0
    assert "on 295 controls" in capsys.readouterr().out  # the 295 rows labelled 0

    few = _write_scores(tmp_path / "few.jsonl", "f", rng.normal(size=60), record_source="f")
    assert main(["calibrate", "--controls", str(few), "--fpr", "0.01", "--output", str(tmp_path / "c2.json")]) == 2
    assert "60 controls cannot give a marginal FPR of 0.01" in capsys.readouterr().err

    # the calibration's own controls are not judged
    assert main(["verdict", "--calibration", str(calibration), "--scores", str(mixed)]) == 2
    assert "disjoint" in capsys.readouterr().err

    # scores from another model are refused unless the user says otherwise
    other = _write_scores(tmp_path / "other.jsonl", "o", [1.0, 2.0], record_source="o")
    record = json.loads((tmp_path / "other.jsonl.run.json").read_text())
    record["models"]["target"]["name"] = "another-model"
    (tmp_path / "other.jsonl.run.json").write_text(json.dumps(record))
    assert main(["verdict", "--calibration", str(calibration), "--scores", str(other)]) == 2
    assert "target model name: controls 'tiny', scores 'another-model'" in capsys.readouterr().err
    assert main(["verdict", "--calibration", str(calibration), "--scores", str(other), "--allow-mismatch"]) == 0


@pytest.mark.slow
def test_evaluate_scores_with_a_tiny_model_then_evaluates(tmp_path, capsys):
    model = make_tiny_model(tmp_path / "llama", "llama", max_positions=128)
    rng = np.random.default_rng(3)
    words = ["the", "cat", "river", "sat", "on", "a", "mat", "near", "old", "stone", "bridge"]
    labelled = tmp_path / "labelled.jsonl"
    with labelled.open("w", encoding="utf-8") as handle:
        for i in range(24):
            text = " ".join(rng.choice(words, size=12)) + "."
            handle.write(json.dumps({"id": f"t{i}", "text": text, "label": i % 2}) + "\n")
    saved = tmp_path / "scores.jsonl"
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--model",
            str(model),
            "--device",
            "cpu",
            "--input",
            str(labelled),
            "--scorers",
            "loss",
            "zlib",
            "--no-progress",
            "--bootstrap",
            "100",
            "--folds",
            "3",
            "--save-scores",
            str(saved),
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "evaluated 24 labelled documents" in printed
    assert any(line.startswith("blind baseline") for line in printed.splitlines())
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["scorers"]) == {"loss", "zlib"}
    assert report["run_record"]["models"]["target"]["name"] == str(model)
    assert report["run_record"]["input"]["documents"] == 24
    assert report["scorers"]["loss"]["n_members"] == 12
    assert saved.is_file() and (tmp_path / "scores.jsonl.run.json").is_file()
    # evaluating the saved scores gives the same numbers
    assert main(["evaluate", "--scores", str(saved), "--no-blind", "--bootstrap", "100"]) == 0
    again = capsys.readouterr().out

    def loss_cells(text):
        return next(line.split() for line in text.splitlines() if line.startswith("loss "))

    assert loss_cells(again) == loss_cells(printed)


@pytest.mark.slow
def test_evaluate_packaged_model_on_the_builtin_sample(tmp_path, capsys):
    """SmolLM2 on famous public-domain passages (members) vs passages written in 2026 (non-members)."""
    from llm_mia.cli.common import builtin_sample_path

    rows = [json.loads(line) for line in builtin_sample_path().read_text(encoding="utf-8").splitlines()]
    labelled = tmp_path / "sample.jsonl"
    labelled.write_text(
        "".join(json.dumps({**r, "label": int(r["group"].startswith("famous"))}) + "\n" for r in rows),
        encoding="utf-8",
    )
    args = ["evaluate", "--input", str(labelled), "--device", "cpu", "--no-progress", "--folds", "4"]
    assert main([*args, "--scorers", "loss", "min_k", "--output-dir", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    # the famous passages are in any web-scale training set: the loss ranks them far above the new ones
    assert report["scorers"]["loss"]["auroc"] > 0.9
    # and the two sets also differ in time and style, which the blind baseline reports beside the attack
    assert report["blind_baseline"]["n_members"] == 8 and report["blind_baseline"]["folds"] == 4
    assert "blind baseline" in capsys.readouterr().out
