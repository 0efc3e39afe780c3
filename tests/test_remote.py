"""Models behind an API, against a real OpenAI-compatible server (llama-cpp-python's) on loopback.

The server serves a float32 copy of the packaged SmolLM2 GGUF (``llm_mia.backends.gguf_float``): the same weights the
white-box engine dequantizes, without llama.cpp's quantized arithmetic, so agreement within a few thousandths
of a nat tests the backend itself. Faults are real too: a proxy (a real HTTP server) that answers 429 with
Retry-After, a server process killed mid-run and started again, a wrong key, an unknown model name.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from api_server import FaultyProxy, free_port, start_llama_server, stop

import llm_mia.backends.remote.model
from llm_mia.backends.loading import ModelSettings
from llm_mia.backends.local import DEFAULT_MODEL, ModelSpec, packaged_gguf_path
from llm_mia.backends.remote.client import ApiClient, ApiSettings, RemoteError
from llm_mia.backends.remote.model import connect
from llm_mia.cli import main
from llm_mia.errors import InputError
from llm_mia.io.documents import Document, read_documents
from llm_mia.scoring.settings import ScoringSettings

pytest.importorskip(
    "llama_cpp.server", reason="needs llama-cpp-python[server]: LLM_MIA_API_SERVER=1 bash scripts/setup.sh builds it"
)

pytestmark = [pytest.mark.slow, pytest.mark.server]  # a llama.cpp server process on loopback

KEY = "sk-test-TOPSECRET-0123456789"
KEY_ENV = "LLM_MIA_TEST_API_KEY"
ALIAS = "smollm2"
SHORT = [
    Document(id="fox", text="The quick brown fox jumps over the lazy dog."),
    Document(id="lincoln", text="Four score and seven years ago our fathers brought forth on this continent"),
    Document(id="dickens", text="It was the best of times, it was the worst of times, it was the age of wisdom"),
]


@pytest.fixture(scope="module")
def float_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llm_mia.backends.gguf_float import write_float32_gguf

    return write_float32_gguf(packaged_gguf_path(DEFAULT_MODEL), tmp_path_factory.mktemp("gguf") / "smollm2-f32.gguf")


@pytest.fixture(scope="module")
def served(float_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = start_llama_server(float_gguf, port, api_key=KEY, alias=ALIAS, log=log)
    yield SimpleNamespace(root=f"http://127.0.0.1:{port}/v1", server=f"http://127.0.0.1:{port}", port=port)
    stop(process)


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key in the environment, and agreement records in a temporary directory."""
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setattr(llm_mia.backends.remote.model, "backend_checks_dir", lambda: tmp_path / "backend-checks")


def api(root: str, **settings) -> ApiSettings:
    return ApiSettings(base_url=root, key_env=KEY_ENV, **settings)


def scoring(root: str, cache: Path, scorers=("loss", "min_k", "lowercase"), **api_settings) -> ScoringSettings:
    return ScoringSettings(
        models=ModelSettings(model=f"api:{ALIAS}", device="cpu", api=api(root, **api_settings)),
        scorers=scorers,
        cache=cache / "tokenstats.sqlite",
    )


def test_probe_finds_the_servers_echo_off_by_one_and_falls_back_to_forced_tokens(served) -> None:
    model = connect(ModelSpec(name=f"api:{ALIAS}"), api(served.root))
    found = model.capabilities
    assert found.served_models == [ALIAS] and found.generation_logprobs
    # llama-cpp-python 0.3.x reads each echoed prompt token from the wrong logits row: the probe must see it
    assert found.echo.startswith("inconsistent"), found.echo
    assert found.forced == "exact" and found.mode == "forced" and found.arrays == ("logprob",)
    record = model.describe()
    assert record["agreement_check"].startswith("never run") and KEY not in json.dumps(record)


def test_api_log_probs_agree_with_the_white_box_engine_and_the_check_is_recorded(served, tiny_model_dirs) -> None:
    from llm_mia.workflows.check_backend import check_backend

    texts = read_documents(Path(__file__).parents[1] / "llm_mia" / "data" / "sample.jsonl")[:3]
    settings = ModelSettings(model=f"api:{ALIAS}", device="cpu", api=api(served.root))
    result = check_backend(settings, DEFAULT_MODEL, texts, cache=False)
    assert result.agrees, "\n".join(result.describe())
    for row in result.texts:  # same tokens on both sides, and each one's log-prob close
        assert row["n_scored_api"] == row["n_scored_local"] > 30
        assert abs(row["loss_difference"]) < 0.005 and row["token_mean_abs"] < 0.005 and row["token_max_abs"] < 0.05
    # later records of this endpoint cite the check
    cited = connect(ModelSpec(name=f"api:{ALIAS}"), api(served.root)).describe()["agreement_check"]
    assert cited["agrees"] is True and cited["tolerance_nats_per_token"] == 0.02
    # the safeguard can fail: the same endpoint against other weights does not agree
    other = check_backend(settings, str(tiny_model_dirs["llama"]), texts[:1], cache=False, save=False)
    assert not other.agrees and "DOES NOT AGREE" in other.describe()[-1]


def test_score_command_through_the_api_matches_white_box_scores_and_never_records_the_key(
    served, smollm2, tmp_path: Path, capsys
) -> None:
    from llm_mia.engine.extract import extract
    from llm_mia.engine.extraction_settings import ExtractionSettings

    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in SHORT))
    output = tmp_path / "scores.jsonl"
    argv = ["score", "--model", f"api:{ALIAS}", "--api-base", served.root, "--api-key-env", KEY_ENV,
            "--input", str(source), "--scorers", "loss", "min_k", "lowercase", "--output", str(output),
            "--cache-dir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["status"] for row in rows] == ["ok"] * 3
    white_box = extract([d.text for d in SHORT], smollm2, ExtractionSettings(progress=False))
    for row, stats in zip(rows, white_box, strict=True):
        assert row["loss"] == pytest.approx(-stats.nll, abs=0.005)
    record_text = Path(f"{output}.run.json").read_text()
    record = json.loads(record_text)
    target = record["models"]["target"]
    assert target["api"]["key_env"] == KEY_ENV and target["api"]["key_set"] is True
    assert target["capabilities"]["mode"] == "forced" and target["agreement_check"].startswith("never run")
    assert KEY not in record_text and "TOPSECRET" not in capsys.readouterr().err
    # every request logged, hash-chained from the texts' hash, with what the API said it was
    from llm_mia.evidence.query_log import walk
    from llm_mia.io.identity import sha256_texts

    log = Path(f"{output}.queries.jsonl")
    lines, head, problem = walk(log, anchor=sha256_texts([d.text for d in SHORT]))
    assert problem is None and record["query_log"]["lines"] == lines > 50 and record["query_log"]["head"] == head
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    completions = [e for e in entries if e["endpoint"] == "completions"]
    assert completions and {e["model_version"] for e in completions} == {ALIAS}
    assert all(len(e["request_sha256"]) == 64 and e["time"] and e["documents"] for e in entries)
    assert KEY not in log.read_text()


def test_a_scorer_the_endpoint_cannot_serve_is_refused_before_any_request(served, capsys) -> None:
    proxy = FaultyProxy(served.server)
    try:
        argv = ["score", "--model", f"api:{ALIAS}", "--api-base", f"{proxy.url}/v1", "--api-key-env", KEY_ENV,
                "--scorers", "loss", "min_k_plus_plus", "--no-cache"]  # fmt: skip
        assert main(argv) == 2
        message = capsys.readouterr().err
        assert "min_k_plus_plus" in message and "mu, sigma" in message and "loss" in message
        assert proxy.log == []  # nothing was sent
    finally:
        proxy.close()


def test_429_is_retried_after_the_servers_retry_after(served, tmp_path: Path) -> None:
    from llm_mia.workflows.score import score_documents

    proxy = FaultyProxy(served.server, fail_with_429=2, retry_after=1)
    try:
        run = score_documents(SHORT[:1], scoring(f"{proxy.url}/v1", tmp_path, scorers=("loss",), backoff=0.1))
        assert run.rows[0]["status"] == "ok"
        statuses = [(t, status) for t, method, path, status in proxy.log if path.endswith("/completions")]
        assert [status for _, status in statuses[:3]] == [429, 429, 200]
        assert statuses[1][0] - statuses[0][0] >= 0.9 and statuses[2][0] - statuses[1][0] >= 0.9  # Retry-After: 1
    finally:
        proxy.close()


def test_a_server_killed_mid_run_resumes_from_the_cache_sending_nothing_twice(float_gguf, tmp_path: Path) -> None:
    from llm_mia.workflows.score import score_documents

    port = free_port()
    root = f"http://127.0.0.1:{port}/v1"
    log = tmp_path / "server.log"
    process = start_llama_server(float_gguf, port, api_key=KEY, alias=ALIAS, log=log)
    settings = scoring(root, tmp_path / "cache", scorers=("loss", "min_k"), max_retries=1, backoff=0)
    sent_first: list[str] = []
    interrupted: list[str] = []

    def kill_after_40(event: dict) -> None:
        if event["event"] == "request":
            sent_first.append(event["request_sha256"])
            if len(sent_first) == 40:
                interrupted.append(event["documents"][0])
                stop(process)

    try:
        with pytest.raises(InputError, match="cannot reach") as failure:
            score_documents(SHORT, settings, observer=kill_after_40)
        assert "rerun resumes" in str(failure.value)
        process = start_llama_server(float_gguf, port, api_key=KEY, alias=ALIAS, log=log)
        events: list[dict] = []
        resumed = score_documents(SHORT, settings, observer=events.append)
        fresh = score_documents(SHORT, scoring(root, tmp_path / "fresh", scorers=("loss", "min_k"), backoff=0))
    finally:
        stop(process)
    sent_again = [e["request_sha256"] for e in events if e["event"] == "request"]
    from_cache = [e["request_sha256"] for e in events if e["event"] == "from cache"]
    assert len(sent_first) == 40 and set(sent_first) <= set(from_cache)  # every answer received is reused
    assert not set(sent_again) & set(sent_first)  # nothing sent twice
    assert [row["status"] for row in resumed.rows] == ["ok"] * 3
    # Texts finished before the kill, or started after it, have exactly an uninterrupted run's numbers. The one
    # interrupted mid-way differs slightly: llama.cpp evaluated the rest of its prefix as one batch on resuming,
    # not token by token, and its arithmetic depends on that (measured: 2e-4 nats here, float32 weights).
    for row, again in zip(resumed.rows, fresh.rows, strict=True):
        if row["id"] == interrupted[0]:
            assert row["loss"] == pytest.approx(again["loss"], abs=1e-3)
        else:
            assert (row["loss"], row["min_k"]) == (again["loss"], again["min_k"])


def test_a_wrong_key_is_refused_and_never_printed(served, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-SHOULDNOTAPPEAR-42")
    argv = ["score", "--model", f"api:{ALIAS}", "--api-base", served.root, "--api-key-env", KEY_ENV,
            "--scorers", "loss", "--no-cache"]  # fmt: skip
    assert main(argv) == 2
    message = capsys.readouterr().err
    assert "HTTP 401" in message and f"${KEY_ENV}" in message and "SHOULDNOTAPPEAR" not in message


def test_a_model_name_the_server_does_not_serve_is_refused(served) -> None:
    # llama-cpp-python answers unknown names with its default model; the client must not let that through
    with pytest.raises(RemoteError, match=rf"'gpt-4' is not served .* it serves: {ALIAS}"):
        connect(ModelSpec(name="api:gpt-4"), api(served.root))


def test_requests_per_second_spaces_requests(served) -> None:
    client = ApiClient(api(served.root, requests_per_second=10))
    start = time.monotonic()
    for _ in range(6):
        client.get("models")
    assert time.monotonic() - start >= 0.5 and client.sent == 6


def test_decop_through_the_api_agrees_with_the_white_box_model(served, tmp_path: Path) -> None:
    """Each answer letter forced in turn (llama.cpp reports its unbiased log-prob): the same DE-COP numbers."""
    from llm_mia.methods.decop import read_quiz_passages
    from llm_mia.workflows.decop import DecopSettings, run_decop

    example = Path(__file__).parents[1] / "llm_mia" / "data" / "decop_example.jsonl"
    passages = read_quiz_passages(example)[1:2]
    common = {"subject": "an English text", "cache": tmp_path / "responses.sqlite"}
    remote = run_decop(
        passages, DecopSettings(models=ModelSettings(model=f"api:{ALIAS}", api=api(served.root)), **common)
    )
    local = run_decop(passages, DecopSettings(models=ModelSettings(device="cpu"), **common))
    assert remote.record["execution"]["orderings_missing_a_letter"] == 0
    assert remote.rows[0]["orderings_answered"] == 24
    assert remote.rows[0]["decop"] == pytest.approx(local.rows[0]["decop"], abs=1e-3)
    assert remote.rows[0]["decop_accuracy"] == local.rows[0]["decop_accuracy"]


def test_samia_through_the_api_keeps_every_sample_and_a_rerun_sends_nothing(served, tmp_path: Path) -> None:
    import sqlite3

    from llm_mia.workflows.samia import SamiaSettings, run_samia

    cache = tmp_path / "responses.sqlite"
    settings = SamiaSettings(models=ModelSettings(model=f"api:{ALIAS}", api=api(served.root)), samples=3, cache=cache)
    first = run_samia(SHORT[:2], settings)
    with sqlite3.connect(cache) as db:
        stored = db.execute("SELECT count(*) FROM responses").fetchone()[0]
    again = run_samia(SHORT[:2], settings)
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT count(*) FROM responses").fetchone()[0] == stored == 2 * 3
    assert [row["status"] for row in first.rows] == ["ok", "ok"]
    assert first.continuations == again.continuations and [r["samia"] for r in first.rows] == [
        r["samia"] for r in again.rows
    ]
    assert len({tuple(c["continuations"]) for c in first.continuations}) == 2  # seeded per text, not one stream


def test_dataset_test_through_the_api_cuts_with_a_named_tokenizer_and_matches_the_white_box_run(
    served, tmp_path: Path
) -> None:
    from llm_mia.io.corpora import wikipedia_summaries
    from llm_mia.workflows.dataset import DatasetTestSettings, run_dataset_test

    summaries = wikipedia_summaries()
    titles = sorted(summaries)[:12]
    # paragraphs joined by spaces: in forced mode a token after a prefix ending in "\n\n" is left unscored (the
    # prefix re-tokenizes to one "\n\n" token where the text has two "\n"), which the last assertion shows
    (tmp_path / "suspect.txt").write_text(" ".join(summaries[t] for t in titles[:3]), encoding="utf-8")
    (tmp_path / "control.txt").write_text(" ".join(summaries[t] for t in titles[3:]), encoding="utf-8")
    common = {"passage_tokens": 16, "splits": 2}
    scoring = {"scorers": ("loss",), "cache": tmp_path / "cache" / "tokenstats.sqlite"}
    remote = run_dataset_test(
        tmp_path / "suspect.txt",
        tmp_path / "control.txt",
        DatasetTestSettings(
            scoring=ScoringSettings(models=ModelSettings(model=f"api:{ALIAS}", api=api(served.root)), **scoring),
            tokenizer=DEFAULT_MODEL,
            **common,
        ),
    )
    local = run_dataset_test(
        tmp_path / "suspect.txt",
        tmp_path / "control.txt",
        DatasetTestSettings(scoring=ScoringSettings(models=ModelSettings(device="cpu"), **scoring), **common),
    )
    assert [p["id"] for p in remote.passage_rows] == [p["id"] for p in local.passage_rows]  # the same cut
    for a, b in zip(remote.rows, local.rows, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=0.01)
    assert remote.result.design == local.result.design
    assert remote.result.p_value == pytest.approx(local.result.p_value, abs=0.05)
    assert remote.record["models"]["target"]["capabilities"]["mode"] == "forced"
    assert remote.record["models"]["target"]["unscored_tokens"] == 0
    broken = Document(id="break", text="the end of a paragraph.\n\nThe next one begins here")
    model = connect(ModelSpec(name=f"api:{ALIAS}"), api(served.root))
    from llm_mia.backends.remote.extract import remote_extract

    (stats,) = remote_extract([broken.text], model, progress=False)
    assert model.unscored_tokens == 1 and stats.n_scored == stats.n_tokens - 2


def test_list_and_check_backend_commands_state_what_the_endpoint_serves(served, capsys) -> None:
    common = ["--model", f"api:{ALIAS}", "--api-base", served.root, "--api-key-env", KEY_ENV]
    assert main(["list", *common]) == 0
    listed = capsys.readouterr().out
    assert "mode: forced" in listed and "echo): inconsistent" in listed and "agreement check: never run" in listed
    assert next(line for line in listed.splitlines() if line.startswith("min_k_plus_plus")).endswith(
        "[not served: needs mu, sigma]"
    )
    assert next(line for line in listed.splitlines() if line.startswith("loss ")).endswith("[served]")
    assert main(["check-backend", *common, "--local", DEFAULT_MODEL, "--limit", "1", "--no-cache"]) == 0
    assert "agrees: every text's loss within 0.02" in capsys.readouterr().out
    assert main(["list", *common]) == 0
    assert "agreement check: agrees (checked " in capsys.readouterr().out


def test_evidence_for_a_model_behind_an_api_is_planned_run_and_verified(served, tmp_path: Path, capsys) -> None:
    """The expert who holds only an API key: the plan fixes the endpoint, the name it reports and the fingerprint
    of the weights it serves, and the tokenizer that cuts the passages; the run checks them; verify re-asks."""
    from llm_mia.io.corpora import wikipedia_summaries

    summaries = wikipedia_summaries()
    titles = [t for t in sorted(summaries) if len(summaries[t].split()) >= 40][:25]
    excerpt = lambda title: " ".join(summaries[title].split()[:32])  # noqa: E731  (two 16-token passages or more)
    work = " ".join(" ".join(summaries[title].split()[:40]) for title in titles[22:25])  # 120 words, 8+ passages
    (tmp_path / "work.txt").write_text(work, encoding="utf-8")
    controls = tmp_path / "controls"
    controls.mkdir()
    for title in titles[:22]:
        (controls / f"{title[:20].replace('/', '_')}.txt").write_text(excerpt(title), encoding="utf-8")
    api_args = ["--model", f"api:{ALIAS}", "--api-base", served.root, "--api-key-env", KEY_ENV]
    plan = tmp_path / "plan.json"
    argv = ["plan", "--suspect", str(tmp_path / "work.txt"), "--control", str(controls), *api_args,
            "--tokenizer", DEFAULT_MODEL, "--passage-tokens", "16", "--scorers", "loss", "--splits", "2",
            "--question", "Was the model behind this API trained on the work?", "--analyst", "A. Expert, test",
            "--control-rationale", "Other encyclopedia articles of the same kind, written the same way, cut alike.",
            "--output", str(plan)]  # fmt: skip
    assert main(argv) == 0
    planned = json.loads(plan.read_text())
    target = planned["models"]["target"]
    assert target["base_url"] == served.root and target["fingerprint"] and target["model_version"] == ALIAS
    assert planned["models"]["tokenizer"]["files"] and KEY not in plan.read_text()
    bundle = tmp_path / "bundle"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["evidence", "run", str(plan), "--output-dir", str(bundle), "--no-pdf", *cache]) == 0
    log = [json.loads(line) for line in (bundle / "query-log.jsonl").read_text().splitlines()]
    assert log and all(e["model_sha256"] == target["files_sha256"] for e in log)
    assert {e["endpoint"] for e in log} >= {"completions"} and KEY not in (bundle / "query-log.jsonl").read_text()
    report = (bundle / "report.html").read_text()
    assert served.root in report and target["fingerprint"] in report and "asked through an API" in report
    capsys.readouterr()
    assert main(["verify", str(bundle), "--rescore", "3"]) == 0
    out = capsys.readouterr().out
    assert "pass     model files: the endpoint reports the planned model" in out
    assert "rescore: 3 passages drawn at random re-scored: largest difference 0," in out
    # a plan made against other weights under the same name is refused before anything is scored
    from llm_mia.evidence.bundle import check_models
    from llm_mia.evidence.plan import read_plan
    from llm_mia.workflows.plan import planned_settings

    other = read_plan(plan)
    other.data["models"]["target"]["fingerprint"] = "0" * 16
    with pytest.raises(InputError, match="serves weights with fingerprint"):
        check_models(other, planned_settings(other).scoring.models, planned_settings(other).tokenizer)
