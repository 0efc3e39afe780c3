"""The API client's parts that need no server: settings, errors, the response cache, the dry run, refusals."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_server import free_port, send_json, serve

from llm_mia.backends.loading import ModelSettings
from llm_mia.backends.remote.client import ApiClient, ApiSettings, RemoteError
from llm_mia.backends.remote.responses import ResponseCache, request_key
from llm_mia.cli import main
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.scoring.request_estimate import estimate_requests
from llm_mia.scoring.scorers import parse_scorer_specs
from llm_mia.scoring.settings import ScoringSettings


def api(root: str, **settings) -> ApiSettings:
    return ApiSettings(base_url=root, key_env="LLM_MIA_TEST_API_KEY", **settings)


def test_an_unreachable_server_gets_a_clear_error() -> None:
    client = ApiClient(api(f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff=0))
    with pytest.raises(RemoteError, match=r"cannot reach .* is the server running"):
        client.get("models")


def test_api_models_need_a_base_url_and_dataset_tests_refuse_them() -> None:
    from llm_mia.workflows.dataset import DatasetTestSettings, run_dataset_test

    with pytest.raises(LlmMiaError, match="--api-base"):
        ModelSettings(model="api:gpt-4")
    settings = DatasetTestSettings(scoring=ScoringSettings(models=ModelSettings(model="api:x", api=api("http://h/v1"))))
    with pytest.raises(LlmMiaError, match="does not expose"):
        run_dataset_test("a", "b", settings)


def test_response_cache_keys_are_canonical_and_damaged_entries_are_asked_again(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "responses.sqlite")
    key = request_key("http://h/v1", "completions", {"model": "m", "prompt": "x"})
    assert key == request_key("http://h/v1/", "/completions", {"prompt": "x", "model": "m"})
    # other weights served under the same name (another fingerprint) are never answered from this cache
    assert request_key("http://h/v1", "completions", {"model": "m", "prompt": "x"}, salt="other weights") != key
    cache.put(key, {"choices": [{"text": "y"}]})
    assert cache.get(key) == {"choices": [{"text": "y"}]}
    cache._connection.execute("UPDATE responses SET body = ? WHERE key = ?", ('{"choices": []}', key))
    assert cache.get(key) is None
    cache.close()


def test_the_dry_run_counts_requests_and_tokens_and_sends_nothing(capsys) -> None:
    documents = [Document(id="a", text="x" * 40), Document(id="b", text="y" * 8), Document(id="empty", text=" ")]
    calls = parse_scorer_specs(["loss", "lowercase"], has_reference=False, arrays=("logprob",))
    (estimate,) = estimate_requests(documents, calls, roles={"target": "api:m"})
    # 10 and 2 tokens (bytes / 4), each read twice (original and lowercased); the empty text is not sent
    assert estimate.views == ("target", "target_lower") and estimate.tokens == 24
    assert (estimate.echo_requests, estimate.echo_prompt_tokens) == (4, 24)
    assert (estimate.forced_completion_requests, estimate.forced_prompt_tokens) == (2 * 9 + 2 * 1, 2 * 45 + 2 * 1)
    # through the CLI, against a port where nothing listens: nothing is sent, so nothing fails
    argv = ["score", "--model", "api:m", "--api-base", f"http://127.0.0.1:{free_port()}/v1", "--dry-run",
            "--price-per-million-tokens", "2", "--scorers", "loss"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "nothing has been sent" in printed and "costing about" in printed


def test_scorers_needing_the_full_distribution_are_left_out_by_default_for_api_models() -> None:
    settings = ScoringSettings(models=ModelSettings(model="api:m", api=api("http://h/v1")))
    names = [call.scorer.name for call in settings.calls]
    assert "min_k_plus_plus" not in names and {"loss", "zlib", "min_k", "lowercase"} <= set(names)
    with pytest.raises(LlmMiaError, match="min_k_plus_plus needs the per-token mu, sigma"):
        ScoringSettings(models=ModelSettings(model="api:m", api=api("http://h/v1")), scorers=("min_k_plus_plus",))


def test_api_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(LlmMiaError, match="not an http"):
        ApiSettings(base_url="api.openai.com/v1")
    with pytest.raises(LlmMiaError, match="requests_per_second must be > 0"):
        ApiSettings(base_url="http://h/v1", requests_per_second=0)


def test_a_key_read_with_a_newline_is_stripped_and_one_with_control_characters_is_refused_unprinted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_MIA_TEST_API_KEY", "sk-abc123\n")
    assert ApiClient(api("http://h/v1"))._headers()["Authorization"] == "Bearer sk-abc123"
    monkeypatch.setenv("LLM_MIA_TEST_API_KEY", "sk-SECRETPART\r\nX-Injected: 1")
    with pytest.raises(RemoteError, match="control characters") as refused:
        ApiClient(api("http://h/v1"))
    assert "SECRETPART" not in str(refused.value)


def test_credentials_in_the_base_url_are_refused() -> None:
    with pytest.raises(LlmMiaError, match="credentials or a query string"):
        ApiSettings(base_url="https://user:sk-SECRET@api.example.com/v1")


@pytest.mark.server
def test_a_malformed_response_is_refused_and_never_cached(tmp_path: Path) -> None:
    """A real HTTP server that answers every POST with a completion that has no log-probs."""
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            send_json(self, b'{"choices": [{"text": "", "logprobs": null}]}')

    server, root = serve(Handler)
    try:
        client = ApiClient(api(root, max_retries=0))
        cache = ResponseCache(tmp_path / "responses.sqlite")

        def needs_logprobs(response: dict) -> float:
            return response["choices"][0]["logprobs"]["token_logprobs"][0]

        for _ in range(2):  # asked again the second time: nothing bad was kept
            with pytest.raises(RemoteError, match="lacks what was asked for"):
                client.post("completions", {"model": "m", "prompt": "x"}, cache=cache, check=needs_logprobs)
        assert client.sent == 2 and cache.stored == 0
    finally:
        server.shutdown()


def test_the_token_rate_limit_holds_over_any_60_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock of our own: requests of 100, 800, 500 and 300 tokens under a limit of 1,000 per minute."""
    import llm_mia.backends.remote.client as client_module

    now = [0.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

        @staticmethod
        def sleep(seconds: float) -> None:
            now[0] += seconds

    monkeypatch.setattr(client_module, "time", Clock)
    limiter = client_module._RateLimiter(None, 1000)
    sent = []
    for tokens, at in ((100, 0.0), (800, 30.0), (500, 60.0), (300, 61.0)):
        now[0] = max(now[0], at)
        limiter.wait(tokens)
        sent.append((now[0], tokens))
    for start, _ in sent:  # every 60-second window
        assert sum(n for t, n in sent if start <= t < start + 60) <= 1000
    assert sent[2][0] == 90.0  # the 500 waited until the 800 of t = 30 had left the window


def test_echoed_prompts_are_counted_by_usage_and_a_leading_bos_is_recognised() -> None:
    """Echo responses as vLLM (a decoded BOS shifts every offset) and OpenAI's legacy models (no BOS) write them;
    the generated token at the end is never taken for the text's."""
    from llm_mia.backends.remote.capabilities import prompt_entries

    text = "The cat sat"
    vllm = {
        "choices": [
            {
                "logprobs": {
                    "tokens": ["<s>", "The", " cat", " sat", " down"],
                    "token_logprobs": [None, -2.0, -3.0, -1.0, -0.5],
                    "text_offset": [0, 3, 6, 10, 14],
                }
            }
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1},
    }
    assert prompt_entries(vllm, text) == (["<s>", "The", " cat", " sat"], [None, -2.0, -3.0, -1.0])
    legacy = {
        "choices": [
            {
                "logprobs": {
                    "tokens": ["The", " cat", " sat", " down"],
                    "token_logprobs": [None, -3.0, -1.0, -0.5],
                    "text_offset": [0, 3, 7, 11],
                }
            }
        ]
    }
    assert prompt_entries(legacy, text) == (["The", " cat", " sat"], [None, -3.0, -1.0])


@pytest.mark.server
def test_echo_requests_run_concurrently_and_come_back_in_input_order(tmp_path: Path) -> None:
    """A real HTTP server that echoes prompts as vLLM does (one token per word, log-prob -len(word)) and takes
    0.2 s per request; it counts the requests in flight. Four at a time give the serial run's numbers, in input
    order, four times as fast; a rerun is answered from the cache."""
    import json
    import threading
    import time
    from http.server import BaseHTTPRequestHandler

    from llm_mia.backends.local import ModelSpec
    from llm_mia.backends.remote.capabilities import Capabilities
    from llm_mia.backends.remote.extract import remote_extract
    from llm_mia.backends.remote.model import RemoteModel

    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            prompt = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["prompt"]
            time.sleep(0.2)
            words = prompt.split(" ")
            tokens = [words[0]] + [" " + word for word in words[1:]] + [" end"]
            offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
            values = [None] + [-float(len(t.strip())) for t in tokens[1:]]
            body = json.dumps(
                {
                    "model": "m",
                    "choices": [{"logprobs": {"tokens": tokens, "token_logprobs": values, "text_offset": offsets}}],
                    "usage": {"prompt_tokens": len(words), "completion_tokens": 1},
                }
            ).encode()
            with lock:
                state["now"] -= 1
            send_json(self, body)

    server, root = serve(Handler)
    texts = [" ".join(["word"] * (2 + i % 3) + ["x" * (i + 1)]) for i in range(12)]

    def run(concurrency: int, cache: ResponseCache) -> tuple[list, float, list]:
        settings = api(root, concurrency=concurrency)
        model = RemoteModel(ModelSpec(name="api:m"), settings, ApiClient(settings), Capabilities(mode="echo"))
        heard: list = []
        start = time.monotonic()
        stats = remote_extract(texts, model, cache=cache, progress=False, observer=lambda i, e: heard.append(i))
        return stats, time.monotonic() - start, heard

    try:
        serial, serial_seconds, _ = run(1, ResponseCache(tmp_path / "serial.sqlite"))
        assert state["most"] == 1
        cache = ResponseCache(tmp_path / "parallel.sqlite")
        parallel, parallel_seconds, heard = run(4, cache)
        assert state["most"] == 4 and sorted(heard) == list(range(12))
        for text, one, other in zip(texts, serial, parallel, strict=True):
            expected = [-float(len(word)) for word in text.split(" ")[1:]]
            assert one.logprob.tolist() == other.logprob.tolist() == expected
        assert parallel_seconds < serial_seconds / 2
        again, _, _ = run(4, cache)  # everything from the cache
        assert cache.hits == 12 and [s.logprob.tolist() for s in again] == [s.logprob.tolist() for s in serial]
    finally:
        server.shutdown()


@pytest.mark.server
def test_concurrent_calls_stop_at_the_first_error_and_keep_what_finished() -> None:
    from llm_mia.backends.remote.client import concurrently

    finished: list[int] = []

    def work(item: int) -> int:
        import time

        time.sleep(0.02)
        if item == 3:
            raise RemoteError("item 3 failed")
        finished.append(item)
        return item

    with pytest.raises(RemoteError, match="item 3"):
        concurrently(work, list(range(50)), workers=2)
    assert 0 < len(finished) < 10  # stopped early: the items not yet started were cancelled
    with pytest.raises(LlmMiaError, match="at least 1"):
        api("http://h/v1", concurrency=0)


# ---------------------------------------------------------------------------- a hung or failing server


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A real TCP server on loopback that accepts every connection and never answers; yields its API root."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        done.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


@pytest.mark.server
def test_a_hung_server_fails_within_the_time_budget_with_what_was_tried(caplog: pytest.LogCaptureFixture) -> None:
    assert ApiSettings(base_url="http://h/v1").time_budget == 60  # by default a hung server fails in a minute
    with silent_server() as root:
        client = ApiClient(api(root, timeout=0.4, time_budget=1.5, backoff=0.05))
        started = time.monotonic()
        with pytest.raises(RemoteError) as failure:
            client.get("models")
        elapsed = time.monotonic() - started
    assert 1.0 < elapsed < 2.5  # the budget, not (retries + 1) x timeout = 2.8 s plus back-off
    message = str(failure.value)
    assert "no answer within 0.4 s" in message and "attempts in" in message and "--api-time-budget 1.5" in message
    # what to check comes first; raising the timeouts only if the server is slow rather than stuck
    assert message.index("check that it is running") < message.index("raise --api-timeout")
    assert failure.value.reason.startswith("no answer in")
    assert not [r for r in caplog.records if r.name.startswith("urllib3") and r.levelno >= logging.WARNING]


@pytest.mark.server
def test_the_cli_fails_a_hung_server_in_one_line_and_leaves_no_empty_query_log(tmp_path: Path, capsys) -> None:
    output = tmp_path / "scores.jsonl"
    with silent_server() as root:
        options = ["--api-base", root, "--api-timeout", "0.3", "--api-time-budget", "0.8", "--no-cache"]
        code = main(["score", "--model", "api:m", *options, "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no answer within 0.3 s" in lines[0] and "Traceback" not in err
    assert "urllib3" not in err and "Retrying" not in err
    assert not output.exists() and not Path(f"{output}.queries.jsonl").exists()


def flaky_server(statuses: list[int], *, retry_after: str | None = None) -> tuple[Any, str, list[float]]:
    """A real HTTP server that answers GETs with ``statuses`` in turn (then 200), recording when each came."""
    from http.server import BaseHTTPRequestHandler

    seen: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # http.server's naming
            seen.append(time.monotonic())
            status = statuses.pop(0) if statuses else 200
            if status != 200:
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "31")
                self.end_headers()
                self.wfile.write(b'{"error": {"message": "busy!"}}')
                return
            send_json(self, b'{"data": [{"id": "m"}]}')

    server, root = serve(Handler)
    return server, root, seen


@pytest.mark.server
def test_failing_statuses_are_retried_with_back_off_and_then_reported_with_the_servers_words(caplog) -> None:
    server, root, seen = flaky_server([503, 502])
    try:
        with caplog.at_level(logging.INFO, logger="llm_mia.backends.remote.client"):
            assert ApiClient(api(root, backoff=0.05)).get("models") == {"data": [{"id": "m"}]}
        assert len(seen) == 3 and seen[1] - seen[0] >= 0.04 and seen[2] - seen[1] >= 0.09  # 0.05, then 0.1 s
        assert "HTTP 503; retrying" in caplog.text
    finally:
        server.shutdown()
    server, root, seen = flaky_server([503] * 10)
    try:
        with pytest.raises(RemoteError) as failure:
            ApiClient(api(root, backoff=0, max_retries=2)).get("models")
        assert len(seen) == 3 and failure.value.status == 503
        assert "HTTP 503 (3 times) (its last answer: busy!), 3 attempts in" in str(failure.value)
    finally:
        server.shutdown()


@pytest.mark.server
def test_a_retry_after_longer_than_the_budget_fails_at_once() -> None:
    server, root, seen = flaky_server([429], retry_after="30")
    try:
        started = time.monotonic()
        with pytest.raises(RemoteError, match="asked to wait 30 s more, past the time budget"):
            ApiClient(api(root, time_budget=5)).get("models")
        assert time.monotonic() - started < 2 and len(seen) == 1
    finally:
        server.shutdown()


def test_an_unreachable_endpoint_is_reported_whole_in_the_capability_table() -> None:
    from llm_mia.backends.remote.capabilities import _probe_chat

    client = ApiClient(api(f"http://127.0.0.1:{free_port()}/v1", max_retries=0))
    assert _probe_chat(client, "m", None) == "no (cannot reach the server)"  # not a message cut at 120 characters
