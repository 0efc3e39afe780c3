"""Verbatim extraction through a real OpenAI-compatible server (llama-cpp-python's, on loopback), serving the
float32 copy of the packaged SmolLM2 that the white-box engine dequantizes: completions and chat, the query log,
the response cache, and --dry-run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from api_server import free_port, start_llama_server, stop

import llm_mia.backends.remote.model
from llm_mia.backends.loading import ModelSettings
from llm_mia.backends.local import DEFAULT_MODEL, packaged_gguf_path
from llm_mia.backends.remote.client import ApiSettings
from llm_mia.cli import main
from llm_mia.io.documents import read_documents
from llm_mia.methods.extraction import ProbeSettings
from llm_mia.workflows.extraction import ExtractionTestSettings, run_extraction_probe

pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (scripts/setup.sh installs it)")

pytestmark = [pytest.mark.slow, pytest.mark.server]  # a llama.cpp server process on loopback

KEY = "sk-test-extraction-0123456789"
KEY_ENV = "LLM_MIA_TEST_API_KEY"
ALIAS = "smollm2"
SAMPLE = Path(__file__).parents[1] / "llm_mia" / "data" / "sample.jsonl"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from llm_mia.backends.gguf_float import write_float32_gguf

    gguf = write_float32_gguf(packaged_gguf_path(DEFAULT_MODEL), tmp_path_factory.mktemp("gguf") / "smollm2-f32.gguf")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = start_llama_server(gguf, port, api_key=KEY, alias=ALIAS, log=log)
    yield SimpleNamespace(root=f"http://127.0.0.1:{port}/v1")
    stop(process)


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setattr(llm_mia.backends.remote.model, "backend_checks_dir", lambda: tmp_path / "backend-checks")


def settings(model: str, root: str | None, cache: Path, **extra) -> ExtractionTestSettings:
    api = ApiSettings(base_url=root, key_env=KEY_ENV) if root else None
    return ExtractionTestSettings(
        models=ModelSettings(model=model, device="cpu", api=api),
        probe=ProbeSettings(prefix_tokens=10, target_tokens=16),
        tokenizer=DEFAULT_MODEL if model.startswith("api:") else None,
        cache=cache / "tokenstats.sqlite",
        progress=False,
        **extra,
    )


def test_completions_through_the_api_match_the_white_box_model(served, tmp_path: Path) -> None:
    famous = [d for d in read_documents(SAMPLE) if d.group == "famous public-domain text"]
    remote = run_extraction_probe(famous, settings(f"api:{ALIAS}", served.root, tmp_path))
    local = run_extraction_probe(famous, settings(DEFAULT_MODEL, None, tmp_path))
    assert remote.record["models"]["target"]["probes"]["asked_through"] == "completions"
    assert [r["id"] for r in remote.rows] == [r["id"] for r in local.rows]
    pairs = [(a["match_tokens"], b["match_tokens"]) for a, b in zip(remote.rows, local.rows, strict=True)]
    assert sum(a == b for a, b in pairs) >= 0.8 * len(pairs), pairs
    declaration = next(r for r in remote.rows if r["source"] == "declaration")
    assert declaration["match_tokens"] >= 8 and "created equal" in declaration["generated_text"]


def test_chat_requests_are_logged_and_a_rerun_sends_nothing(served, tmp_path: Path) -> None:
    from llm_mia.backends.local import ModelSpec
    from llm_mia.backends.remote.model import connect
    from llm_mia.io.passages import Source, passages_from_sources
    from llm_mia.methods.continuation_api import CHAT_INSTRUCTION
    from llm_mia.workflows.extraction import build_probes, continue_probes, cutting_tokenizer

    chosen = settings(f"api:{ALIAS}", served.root, tmp_path, api_mode="chat")
    tokenizer = cutting_tokenizer(chosen)
    documents = read_documents(SAMPLE)[:3]
    sources = [Source(name=d.id, text=d.text) for d in documents]
    passages, _ = passages_from_sources(sources, tokenizer=tokenizer, passage_tokens=26)
    probes = build_probes(passages, sources, tokenizer, 10, "input")
    model = connect(ModelSpec(name=f"api:{ALIAS}"), chosen.models.api)
    heard: list[dict] = []
    answers, asked = continue_probes(model, probes, chosen, cutting=tokenizer, role="target", observer=heard.append)
    assert asked["asked_through"] == "chat" and len(answers) == len(probes)
    assert [e["event"] for e in heard] == ["request"] * len(probes)
    assert all(e["endpoint"] == "chat/completions" and len(e["request_sha256"]) == 64 for e in heard)
    assert {e["model_version"] for e in heard} == {ALIAS} and heard[0]["view"] == "target"
    assert CHAT_INSTRUCTION.startswith("Continue the following text exactly")
    again: list[dict] = []
    repeated, _ = continue_probes(model, probes, chosen, cutting=tokenizer, role="target", observer=again.append)
    assert [e["event"] for e in again] == ["from cache"] * len(probes) and repeated == answers


def test_dry_run_counts_requests_and_tokens_and_sends_nothing(tmp_path: Path, capsys) -> None:
    nothing = f"http://127.0.0.1:{free_port()}/v1"  # no server: any request would fail
    argv = ["extract-test", "--model", f"api:{ALIAS}", "--api-base", nothing, "--api-key-env", KEY_ENV,
            "--tokenizer", DEFAULT_MODEL, "--dry-run", "--samples", "3", "--temperature", "1",
            "--price-per-million-tokens", "2"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "20 passages x 3 sample(s) = 60 requests" in out and "nothing has been sent" in out
