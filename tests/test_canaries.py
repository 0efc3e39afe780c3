"""Canaries: exact rank p-values against brute force, the generator's seed, the commitment, planting, validity
on canaries never trained on (uniform p-values), and power on a model trained on them."""

from __future__ import annotations

import html
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, combine_pvalues, kstest

from llm_mia.backends.loading import ModelSettings
from llm_mia.canaries.make import CanarySettings, make_canaries, read_secret, sibling_warning, write_secret
from llm_mia.canaries.plant import plant_canaries
from llm_mia.canaries.ranks import exposure, fisher_combined, rank_p_value
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.workflows.canary import CanaryTestSettings, run_canary_test

WORDS = [f"w{a}{b}" for a, b in itertools.product("abcdefghij", "klmnopqrst")]  # 100 words


@pytest.fixture
def word_list(tmp_path: Path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


def test_rank_p_value_equals_brute_force_with_ties_against_the_canary() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.integers(0, 5, size=rng.integers(2, 30)).astype(float)  # many ties
        canary, siblings = scores[0], scores[1:]
        at_least = sum(1 for s in siblings if s >= canary)  # brute force: every sibling as high or higher
        rank, p = rank_p_value(canary, list(siblings))
        assert rank == 1 + at_least and p == (1 + at_least) / (len(siblings) + 1)
    assert rank_p_value(3.0, [3.0, 3.0, 3.0]) == (4, 1.0)  # all tied: no evidence at all
    assert rank_p_value(9.0, [1.0, 2.0, 3.0]) == (1, 0.25)
    assert exposure(1, 999) == pytest.approx(np.log2(1000))
    with pytest.raises(ValueError, match="no finite score"):
        rank_p_value(float("nan"), [1.0])


def test_fisher_matches_scipy() -> None:
    p_values = [0.01, 0.3, 0.5, 0.04, 0.9]
    assert fisher_combined(p_values) == pytest.approx(combine_pvalues(p_values, method="fisher").pvalue, rel=1e-12)


@pytest.fixture
def words(word_list, tiny_model_dirs):
    """Settings for the words generator on the test word list, lengths counted by the tiny GPT-2's tokenizer."""
    return lambda **given: CanarySettings(
        **{"word_list": str(word_list), "tokenizer": str(tiny_model_dirs["gpt2"]), **given}
    )


def test_the_generator_reproduces_from_its_seed(words) -> None:
    settings = words(count=5, siblings=9, length=12, seed=3)
    first, again = make_canaries(settings), make_canaries(settings)
    assert first == again
    other = make_canaries(words(count=5, siblings=9, length=12, seed=4))
    assert other["canaries"] != first["canaries"]
    for canary in first["canaries"]:
        assert len(canary["siblings"]) == 9 and canary["text"] not in canary["siblings"]
        assert all(word in WORDS for word in canary["text"].split())
    assert first["word_list_size"] == 100


def test_word_canaries_fit_their_token_budget(words, tiny_loaded) -> None:
    record = make_canaries(words(count=3, siblings=4, length=10))
    tokenizer = tiny_loaded["gpt2"].tokenizer
    for canary in record["canaries"]:
        for text in (canary["text"], *canary["siblings"]):
            assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 10


def test_template_slots_are_filled(word_list) -> None:
    record = make_canaries(
        CanarySettings(
            generator="template", template="Code of {word}: {number:8}.", count=4, siblings=3, word_list=str(word_list)
        )
    )
    for canary in record["canaries"]:
        word, number = canary["text"][len("Code of ") : -1].split(": ")
        assert word in WORDS and len(number) == 8 and number.isdigit()


def test_the_commitment_refuses_a_modified_secret_file(words, tmp_path) -> None:
    record = make_canaries(words(count=2, siblings=3, length=8))
    secret = tmp_path / "secret.json"
    digest = write_secret(record, secret)
    assert read_secret(secret, digest)["sha256"] == digest
    with pytest.raises(InputError, match="exists: a secret file is never overwritten"):
        write_secret(record, secret)
    changed = json.loads(secret.read_text())
    changed["canaries"][0]["siblings"][0] = "a sibling swapped after the commitment"
    secret.write_text(json.dumps(changed, indent=1, sort_keys=True))
    with pytest.raises(InputError, match=f"not the committed {digest}"):
        read_secret(secret, digest)


def test_planting_logs_where_every_copy_went(words, tmp_path) -> None:
    record = make_canaries(words(count=3, siblings=2, length=8))
    work = tmp_path / "work.txt"
    work.write_text("First paragraph.\n\nSecond paragraph.\n\nThird paragraph.\n")
    for mode in ("append", "paragraphs"):
        out = tmp_path / f"{mode}.txt"
        log = plant_canaries(record, work, out, repetitions=2, mode=mode)
        planted = out.read_text()
        assert len(log) == 6
        texts = {c["id"]: c["text"] for c in record["canaries"]}
        for entry in log:
            assert planted[entry["offset"] : entry["offset"] + len(texts[entry["canary"]])] == texts[entry["canary"]]
        assert all(p in planted for p in ("First paragraph.", "Second paragraph.", "Third paragraph."))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "one"}\n{"id": "b", "text": "two"}\n')
    log = plant_canaries(record, corpus, tmp_path / "planted.jsonl", repetitions=3, mode="documents")
    lines = (tmp_path / "planted.jsonl").read_text().splitlines()
    assert len(lines) == 2 + 9 and all(json.loads(lines[e["line"] - 1])["id"].startswith(e["canary"]) for e in log)
    with pytest.raises(InputError, match="no such file to plant into"):
        plant_canaries(record, tmp_path / "missing.txt", tmp_path / "x.txt", repetitions=1)
    with pytest.raises(InputError, match="write the planted copy to a new file"):
        plant_canaries(record, work, tmp_path / "append.txt", repetitions=1)
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.slow
def test_canaries_never_trained_on_give_uniform_p_values(words, tiny_model_dirs, tmp_path) -> None:
    """240 canaries with 19 siblings each under a model that never saw any: the randomised p-values (rank minus a
    uniform share of one step) are uniform by KS, and p <= 0.05 happens at a rate inside its exact interval."""
    record = make_canaries(words(count=240, siblings=19, length=10, seed=11))
    secret = tmp_path / "secret.json"
    digest = write_secret(record, secret)
    models = ModelSettings(model=str(tiny_model_dirs["gpt2"]), device="cpu")
    result = run_canary_test(secret, CanaryTestSettings(models=models, commitment=digest, cache=False))
    p_values = np.array([row["p_value"] for row in result["per_canary"]])
    randomised = p_values - np.random.default_rng(0).random(len(p_values)) / 20
    assert kstest(randomised, "uniform").pvalue > 0.01
    hits = int((p_values <= 0.05).sum())
    assert binomtest(hits, len(p_values), 0.05).pvalue > 0.01, hits
    assert result["combined_p_value"] > 0.01 and result["verdict"].startswith("no evidence")


@pytest.mark.train
def test_a_model_trained_on_the_canaries_ranks_them_first(words, tiny_model_dirs, tmp_path) -> None:
    """Train the tiny Llama on 5 canaries (their siblings never) and the test detects every one."""
    from transformers import AutoModelForCausalLM

    from llm_mia.backends.local import ModelSpec, load_model

    record = make_canaries(words(count=5, siblings=19, length=10, seed=5))
    secret = tmp_path / "secret.json"
    digest = write_secret(record, secret)
    loaded = load_model(ModelSpec(name=str(tiny_model_dirs["llama"]), device="cpu"))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dirs["llama"], dtype=torch.float32)
    tokenizer = loaded.tokenizer
    ids = [
        list(loaded.prefix_ids) + tokenizer(c["text"], add_special_tokens=False)["input_ids"]
        for c in record["canaries"]
    ]
    width = max(map(len, ids))
    batch = torch.tensor([row + [0] * (width - len(row)) for row in ids])
    labels = torch.tensor([row + [-100] * (width - len(row)) for row in ids])
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        model(input_ids=batch, labels=labels).loss.backward()
        optimizer.step()
    model.save_pretrained(tmp_path / "trained")
    tokenizer.save_pretrained(tmp_path / "trained")
    models = ModelSettings(model=str(tmp_path / "trained"), device="cpu")
    result = run_canary_test(secret, CanaryTestSettings(models=models, commitment=digest, cache=False))
    assert all(row["rank"] == 1 and row["p_value"] == 0.05 for row in result["per_canary"])
    # every canary first among 20: each p = 1/20, the smallest possible; Fisher over five of them
    assert result["combined_p_value"] == pytest.approx(combine_pvalues([0.05] * 5, method="fisher").pvalue)
    assert result["verdict"].startswith("consistent with training")
    assert result["detected"] == 5


def test_bad_input_is_refused(word_list, tmp_path) -> None:
    assert "no single canary can reach p <= 0.05" in sibling_warning(9)
    assert sibling_warning(19) is None
    with pytest.raises(LlmMiaError, match="valid are words, template, model"):
        CanarySettings(generator="dice")
    with pytest.raises(LlmMiaError, match="needs --template"):
        CanarySettings(generator="template")
    with pytest.raises(InputError, match="no such secret file"):
        read_secret(tmp_path / "none.json", None)


def test_the_cli_makes_plants_and_tests(word_list, tiny_model_dirs, tmp_path, capsys) -> None:
    from llm_mia.cli import main

    secret = tmp_path / "secret.json"
    common = ["--secret", str(secret)]
    make = [
        "canary",
        "make",
        *common,
        "--count",
        "3",
        "--siblings",
        "19",
        "--length",
        "8",
        "--word-list",
        str(word_list),
        "--tokenizer",
        str(tiny_model_dirs["gpt2"]),
    ]
    assert main(make) == 0
    commitment = tmp_path / "secret.json.commitment.json"
    published = json.loads(commitment.read_text())
    assert published["canaries"] == 3 and "canary-0000" not in commitment.read_text()  # no secret text in it
    assert main(make) != 0 and "never overwritten" in capsys.readouterr().err
    work = tmp_path / "work.txt"
    work.write_text("One.\n\nTwo.\n")
    planted = tmp_path / "planted.txt"
    assert main(["canary", "plant", *common, "--into", str(work), "--output", str(planted), "--repetitions", "2"]) == 0
    log = json.loads((tmp_path / "planted.txt.plant-log.json").read_text())
    assert len(log["copies"]) == 6 and log["secret_sha256"] == published["sha256"]
    result = tmp_path / "result.json"
    test = ["canary", "test", *common, "--model", str(tiny_model_dirs["gpt2"]), "--device", "cpu", "--no-cache"]
    assert main([*test, "--commitment", str(commitment), "--output", str(result)]) == 0
    out = capsys.readouterr().out
    assert "canary-0002: rank" in out and "combined p = " in out
    assert json.loads(result.read_text())["commitment_checked"] is True
    assert main([*test, "--commitment", "0" * 64]) != 0
    assert "not the committed 000000" in capsys.readouterr().err


@pytest.mark.slow
def test_the_planting_benchmark_detects_repeated_canaries_and_not_unplanted_ones(tmp_path) -> None:
    """The CI-size GPT-2 recipe trained 4 epochs on its members plus canaries planted 16 times: each planted group
    is detected far more often than the never-planted one."""
    from llm_mia.workflows.benchmark_canaries import plot_detection, run_canary_benchmark, table_lines

    result = run_canary_benchmark(
        "gpt2-wikipedia", tmp_path, size="ci", repetitions=(0, 16), lengths=(12,), count=4, siblings=19, epochs=4
    )
    rows = {row["repetitions"]: row for row in result["rows"]}
    assert result["planted_copies"] == 4 * 16
    assert rows[16]["detected"] == 4 and rows[16]["median_p"] == 0.05
    assert rows[0]["detected"] <= 1 and rows[0]["combined_p"] > 0.01
    assert "0 (never planted)" in "\n".join(table_lines(result))
    plot_detection(result, tmp_path / "detection.png")
    assert (tmp_path / "detection.png").stat().st_size > 1000


def test_a_canary_plan_runs_into_a_bundle_that_verifies(words, tiny_model_dirs, tmp_path, capsys) -> None:
    """The plan fixes the secret file's hash, the model's files and the scorer; the bundle verifies, a full re-run
    gives the same ranks, and a secret file changed after the plan is refused by the run and by verify."""
    from llm_mia.cli import main
    from llm_mia.evidence.plan import read_plan
    from llm_mia.workflows.verify import verify_bundle

    record = make_canaries(words(count=4, siblings=19, length=8, seed=11))
    secret = tmp_path / "secret.json"
    digest = write_secret(record, secret)
    model = ["--model", str(tiny_model_dirs["gpt2"]), "--device", "cpu"]
    plan_args = ["canary", "plan", "--secret", str(secret), *model, "--scorer", "min_k:k=0.2", "--output"]
    words_in = ["--question", "Was the model trained on our canaries?", "--analyst", "A. Expert"]
    assert main([*plan_args, str(tmp_path / "p.json"), *words_in]) != 0  # no commitment: refused
    assert "needs --commitment" in capsys.readouterr().err
    assert main([*plan_args, str(tmp_path / "p.json"), *words_in, "--commitment", "f" * 64]) != 0
    assert "not the committed" in capsys.readouterr().err and not (tmp_path / "p.json").exists()
    assert main([*plan_args, str(tmp_path / "plan.json"), *words_in, "--commitment", digest]) == 0
    plan = read_plan(tmp_path / "plan.json")
    assert plan.data["kind"] == "canary" and plan.data["secret"]["sha256"] == digest
    assert plan.data["settings"]["scorer"] == "min_k:k=0.2"
    assert record["canaries"][0]["siblings"][0] not in (tmp_path / "plan.json").read_text()  # siblings stay secret

    bundle = tmp_path / "bundle"
    assert (
        main(["evidence", "run", str(tmp_path / "plan.json"), "--output-dir", str(bundle), "--no-pdf", "--no-cache"])
        == 0
    )
    results = json.loads((bundle / "results.json").read_text())
    direct = run_canary_test(
        secret,
        CanaryTestSettings(
            models=ModelSettings(model=str(tiny_model_dirs["gpt2"]), device="cpu"),
            scorer="min_k:k=0.2",
            commitment=digest,
            cache=False,
        ),
    )
    assert results["combined_p_value"] == direct["combined_p_value"] and results["plan_sha256"] == plan.sha256
    report = (bundle / "report.html").read_text()
    assert html.escape(results["verdict_sentence"]) in report and "canary-0003" in report
    verification = verify_bundle(bundle, full=True)
    assert verification.ok and verification.complete, [c.line() for c in verification.checks]
    assert [c.name for c in verification.checks][-4:] == ["canaries", "model files", "secret file", "full re-run"]

    changed = json.loads(secret.read_text())
    changed["canaries"][0]["siblings"][0] = "a replaced sibling"
    secret.write_text(json.dumps(changed))
    checks = {c.name: c for c in verify_bundle(bundle).checks}
    assert checks["secret file"].outcome == "FAIL" and "not the committed" in checks["secret file"].detail
    assert main(["evidence", "run", str(tmp_path / "plan.json"), "--output-dir", str(tmp_path / "b2"), "--no-pdf"]) != 0
    assert "not the committed" in capsys.readouterr().err and not (tmp_path / "b2").exists()
