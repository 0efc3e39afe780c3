"""An HTTP client for OpenAI-compatible endpoints, careful with a paid API and with the user's key.

- The key is read from the environment variable the user names (default ``OPENAI_API_KEY``) and sent only as
  the ``Authorization`` header. It is never stored on disk, in a record, a log or an error message: every
  message this module builds goes through :meth:`ApiClient.redact` first.
- Retries with exponential back-off on 429 and 5xx, on dropped or refused connections and on timeouts,
  honouring ``Retry-After`` (the waits are ``backoff * 2**(n-1)`` seconds, capped at ``max_backoff``), within a
  total time budget per request (``time_budget``, default 60 s): each attempt waits at most ``timeout`` seconds
  for an answer and never past the budget, so a server that accepts connections and never answers fails in
  about a minute, not after every retry has waited the full timeout. A request that still fails gets one error
  that says what was tried, for how long, what each attempt met, and what to check. urllib3 retries nothing
  itself (its retry warnings would otherwise reach the console); this loop logs each retry at INFO.
- Rate limits: at most ``requests_per_second`` requests and ``tokens_per_minute`` prompt tokens (estimated
  as bytes / 4 before the request; OpenAI's rule of thumb) are sent, by sleeping before a request, never by
  dropping one.
- Timeouts on connect and read.
- Concurrency: :func:`concurrently` keeps up to ``concurrency`` requests in flight (threads; results in input
  order). Each request's answer must not depend on the others, which holds for a stateless server; callers that
  talk to a stateful one (forced-token scoring on llama.cpp, whose prompt cache makes a prefix's numbers depend
  on what was evaluated before it) keep to one request at a time.
- Every response can be kept in a :class:`~llm_mia.backends.remote.responses.ResponseCache`, so a rerun or a resumed
  run sends nothing twice (see :meth:`ApiClient.post`).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from llm_mia.errors import LlmMiaError

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
DEFAULT_TIMEOUT = 30.0  # seconds one attempt waits for an answer
DEFAULT_TIME_BUDGET = 60.0  # seconds one request may take in all: a hung server fails in about a minute
CONNECT_TIMEOUT = 10.0
Item = TypeVar("Item")
Result = TypeVar("Result")


class RemoteError(LlmMiaError):
    """A model behind an API could not serve a request; the message names the endpoint and the fix.

    ``reason``: the same in a few words, for a table cell ("connection refused", "HTTP 404"); ``status``: the
    HTTP status of the last answer, if any.
    """

    def __init__(self, message: str, *, reason: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.status = status


@dataclass(frozen=True)
class ApiSettings:
    """Where the endpoint is and how carefully to talk to it.

    ``base_url``: the API root including ``/v1`` (``https://api.openai.com/v1``, ``http://127.0.0.1:8000/v1``).
    ``key_env``: the environment variable holding the key (unset: no ``Authorization`` header, as a local
    server needs). ``timeout``: seconds one attempt waits for a response. ``time_budget``: seconds one request
    may take in all, retries and back-off included (a hung server fails after this long). ``max_retries``:
    retries on 429, 5xx, dropped connections and timeouts, within the budget. ``backoff``: first back-off in
    seconds (doubling). ``requests_per_second`` and ``tokens_per_minute``: client-side rate limits (None: none),
    shared by all concurrent requests. ``concurrency``: requests in flight at once (where the caller allows it;
    see :func:`concurrently`).
    """

    base_url: str
    key_env: str = "OPENAI_API_KEY"
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = 6
    backoff: float = 0.5
    max_backoff: float = 60.0
    requests_per_second: float | None = None
    tokens_per_minute: float | None = None
    concurrency: int = 1
    time_budget: float = DEFAULT_TIME_BUDGET

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise LlmMiaError(
                f"--api-base {self.base_url!r} is not an http(s) URL; give the API root, e.g. http://127.0.0.1:8000/v1"
            )
        if "@" in self.base_url.split("//", 1)[1].split("/", 1)[0] or "?" in self.base_url:
            raise LlmMiaError(
                "--api-base holds credentials or a query string, which would be written to run records; give the "
                "plain API root and put the key in the environment variable --api-key-env names"
            )
        if self.concurrency < 1:
            raise LlmMiaError(f"--api-concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0 or self.time_budget <= 0:
            raise LlmMiaError(
                f"--api-timeout {self.timeout:g} and --api-time-budget {self.time_budget:g} must both be more than "
                f"0 seconds"
            )
        if self.max_retries < 0 or self.backoff < 0:
            raise LlmMiaError(f"--api-retries {self.max_retries} and the back-off {self.backoff:g} must be 0 or more")
        for name in ("requests_per_second", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise LlmMiaError(f"{name} must be > 0 (or unset for no limit), got {value}")

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    def to_dict(self) -> dict[str, Any]:
        """For run records: where and how, and the *name* of the key's variable (never the key)."""
        return {
            "base_url": self.root,
            "key_env": self.key_env,
            "key_set": bool(os.environ.get(self.key_env)),
            "timeout": self.timeout,
            "time_budget": self.time_budget,
            "max_retries": self.max_retries,
            "requests_per_second": self.requests_per_second,
            "tokens_per_minute": self.tokens_per_minute,
            "concurrency": self.concurrency,
        }


class _RateLimiter:
    """Sleeps before a request so that at most ``per_second`` requests and ``per_minute`` tokens go out."""

    def __init__(self, per_second: float | None, tokens_per_minute: float | None) -> None:
        self.per_second = per_second
        self.tokens_per_minute = tokens_per_minute
        self._last = 0.0
        self._tokens: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def wait(self, tokens: float) -> None:
        with self._lock:
            now = time.monotonic()
            if self.per_second:
                delay = self._last + 1.0 / self.per_second - now
                if delay > 0:
                    time.sleep(delay)
                    now = time.monotonic()
            if self.tokens_per_minute:
                while True:  # wait until this request fits in the last 60 s (or the window is empty)
                    while self._tokens and now - self._tokens[0][0] >= 60:
                        self._tokens.popleft()
                    used = sum(count for _, count in self._tokens)
                    if not self._tokens or used + tokens <= self.tokens_per_minute:
                        break
                    time.sleep(max(0.0, 60 - (now - self._tokens[0][0])))
                    now = time.monotonic()
                self._tokens.append((now, tokens))
            self._last = now


class ApiClient:
    """POST/GET JSON to one OpenAI-compatible API root (see module docstring)."""

    def __init__(self, settings: ApiSettings) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.settings = settings
        key = (os.environ.get(settings.key_env) or "").strip()
        if any(ord(character) < 32 or ord(character) == 127 for character in key):
            raise RemoteError(f"${settings.key_env} holds control characters inside the key; set it to the key alone")
        self._key = key or None
        self._session = requests.Session()
        pool = max(10, settings.concurrency)
        # no retries inside urllib3: :meth:`request` retries, within the time budget
        self._session.mount("http://", HTTPAdapter(max_retries=0, pool_maxsize=pool))
        self._session.mount("https://", HTTPAdapter(max_retries=0, pool_maxsize=pool))
        self._limiter = _RateLimiter(settings.requests_per_second, settings.tokens_per_minute)
        self._count_lock = threading.Lock()
        self.sent = 0

    def redact(self, text: str) -> str:
        """``text`` with the key (if any) replaced by ``***``: every message passes through here."""
        return text.replace(self._key, "***") if self._key else text

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request, retried as configured within the time budget; the decoded JSON body, or a
        :class:`RemoteError`.

        ``path``: relative to the API root (``completions``), or an absolute URL on the same server.
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.settings.root}/{path.lstrip('/')}"
        body = None if payload is None else json.dumps(payload)
        self._limiter.wait(len(body or "") / 4)
        response = self._send_with_retries(method, url, body)
        with self._count_lock:
            self.sent += 1
        if response.status_code in (401, 403):
            source = f"${self.settings.key_env}" if self._key else f"no key (${self.settings.key_env} is not set)"
            raise RemoteError(
                f"{url} refused the request (HTTP {response.status_code}) with {source}; set a valid key in "
                f"${self.settings.key_env} (the key is never printed)",
                reason=f"HTTP {response.status_code}: refused the key",
                status=response.status_code,
            )
        if response.status_code >= 400:
            detail = _error_detail(response)
            raise RemoteError(
                self.redact(f"{method} {url}: HTTP {response.status_code}: {detail}"),
                reason=f"HTTP {response.status_code}",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                f"{method} {url}: the response is not JSON (is --api-base the API root?)", reason="not JSON"
            ) from None

    def _send_with_retries(self, method: str, url: str, body: str | None) -> Any:
        """Send until an answer that is not worth retrying comes back (returned), or the retries or the time
        budget run out (a :class:`RemoteError` saying what each attempt met and what to check)."""
        import requests

        settings = self.settings
        started = time.monotonic()
        deadline = started + settings.time_budget
        met: list[str] = []  # what each attempt met, in words
        kinds: set[str] = set()  # timeout, connection, status
        retry_after: float | None = None
        last: Any = None  # the last answer with a status worth retrying
        for attempt in range(settings.max_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            connect_timeout, read_timeout = min(CONNECT_TIMEOUT, left), min(settings.timeout, left)
            try:
                response = self._session.request(
                    method, url, data=body, headers=self._headers(), timeout=(connect_timeout, read_timeout)
                )
            except requests.exceptions.ConnectTimeout:
                met.append(f"no connection within {connect_timeout:.3g} s")
                kinds.add("timeout")
            except requests.exceptions.Timeout:
                met.append(f"no answer within {read_timeout:.3g} s")
                kinds.add("timeout")
            except requests.exceptions.ConnectionError as error:
                if "timed out" in str(error).lower():  # a read timeout met while the body was streaming
                    met.append(f"no answer within {read_timeout:.3g} s")
                    kinds.add("timeout")
                else:
                    met.append(_connection_problem(error))
                    kinds.add("connection")
            except requests.exceptions.RequestException as error:  # anything else: its message may hold headers
                raise RemoteError(
                    self.redact(f"{method} {url}: {error.__class__.__name__}: {error}"),
                    reason=error.__class__.__name__,
                ) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                met.append(f"HTTP {response.status_code}")
                kinds.add("status")
                retry_after = _retry_after(response)
                last = response
            if attempt == settings.max_retries:
                break
            wait = min(settings.max_backoff, settings.backoff * 2**attempt) if retry_after is None else retry_after
            if time.monotonic() + wait >= deadline:
                if retry_after is not None:
                    met.append(f"the server asked to wait {retry_after:g} s more, past the time budget")
                break
            logger.info("%s %s: %s; retrying in %.3g s", method, url, met[-1], wait)
            time.sleep(wait)
            retry_after = None
        raise self._failure(method, url, met, kinds, time.monotonic() - started, last)

    def _failure(
        self, method: str, url: str, met: list[str], kinds: set[str], seconds: float, last: Any
    ) -> RemoteError:
        """The one error for a request that never got an answer worth keeping: what was tried, for how long,
        what the attempts met, and what to check."""
        settings = self.settings
        tried = (
            f"{len(met)} attempt{'s' if len(met) != 1 else ''} in {_seconds(seconds)} (each waiting up to "
            f"--api-timeout {settings.timeout:g} s, all within --api-time-budget {settings.time_budget:g} s, "
            f"--api-retries {settings.max_retries})"
        )
        summary = "; ".join(_counted(met))
        status = None if last is None else last.status_code
        if kinds == {"connection"}:
            return RemoteError(
                self.redact(f"cannot reach {url}: {summary}, {tried}; is the server running, and is --api-base right?"),
                reason="cannot reach the server",
            )
        if kinds == {"timeout"}:
            advice = (
                f"the server takes connections but does not answer: check that it is running normally (its own log; "
                f"does {settings.root}/models answer?); only if it is slow rather than stuck, raise --api-timeout and "
                f"--api-time-budget"
            )
            reason = f"no answer in {_seconds(seconds)}"
        else:
            advice = (
                "the server is overloaded, failing or rate-limiting: lower --api-requests-per-second, try again "
                "later, or raise --api-time-budget to wait longer"
            )
            reason = f"HTTP {status}" if kinds == {"status"} else "no answer"
        said = f" (its last answer: {_error_detail(last)})" if last is not None else ""
        return RemoteError(
            self.redact(f"{method} {url}: {summary}{said}, {tried}; {advice}"), reason=reason, status=status
        )

    def post(
        self,
        path: str,
        payload: dict[str, Any],
        *,
        cache: Any = None,
        on_request: Callable[[dict[str, Any]], None] | None = None,
        check: Callable[[dict[str, Any]], Any] | None = None,
        salt: str = "",
    ) -> dict[str, Any]:
        """POST ``payload``; with ``cache`` (a ResponseCache) an identical earlier request is answered from it.

        ``on_request`` hears one event per call: ``{"event": "request" | "from cache", "endpoint", "request_sha256",
        "model_version"}`` (the model name the response reports), for the query log. ``check(response)`` reads
        what the caller needs and raises KeyError/TypeError/IndexError/ValueError when it is not there: such a
        response is refused, and never cached. ``salt`` joins the cache key (the served weights' fingerprint, so
        that new weights behind an old name are asked afresh).
        """
        from llm_mia.backends.remote.responses import request_key

        key = request_key(self.settings.root, path, payload, salt=salt)
        if cache is not None:
            stored = cache.get(key)
            if stored is not None:
                if on_request is not None:
                    on_request(_event("from cache", path, key, stored))
                return stored
        response = self.request("POST", path, payload)
        if check is not None:
            try:
                check(response)
            except (KeyError, TypeError, IndexError, ValueError) as error:
                raise RemoteError(
                    self.redact(
                        f"POST {self.settings.root}/{path}: the response lacks what was asked for "
                        f"({error.__class__.__name__}: {error}); not kept"
                    ),
                    reason="the response lacks what was asked for",
                ) from None
        if cache is not None:
            cache.put(key, response)
        if on_request is not None:
            on_request(_event("request", path, key, response))
        return response

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)


def concurrently(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    *,
    done: Callable[[], object] | None = None,
) -> list[Result]:
    """``[function(item) for item in items]``, with up to ``workers`` calls running at once (threads).

    Results come back in input order whatever order the calls finish in. ``done()`` is called (in the calling
    thread) after each item. The first call to raise stops the rest: calls not yet started are cancelled, those
    running finish (their responses are cached, so nothing received is lost), and the error is raised.

    >>> concurrently(lambda x: x * x, [3, 1, 2], workers=2)
    [9, 1, 4]
    """
    if workers <= 1 or len(items) <= 1:
        results = []
        for item in items:
            results.append(function(item))
            if done is not None:
                done()
        return results
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-mia-api") as pool:
        futures = [pool.submit(function, item) for item in items]
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in finished:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                if done is not None:
                    done()
        return [future.result() for future in futures]


def has_choice(response: dict[str, Any]) -> None:
    """A ``check`` for :meth:`ApiClient.post`: the response holds a first choice (raises when it does not)."""
    if not response["choices"]:
        raise IndexError("no choices in the response")


def _connection_problem(error: Exception) -> str:
    """A dropped or refused connection in a few words (requests' own message is urllib3's repr chain)."""
    text = str(error).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "host name not found"
    if "reset" in text or "aborted" in text or "remote end closed" in text or "remotedisconnected" in text:
        return "connection dropped"
    return "connection failed"


def _seconds(value: float) -> str:
    """``0.8 s``, ``12 s``: tenths where they count."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _retry_after(response: Any) -> float | None:
    """The seconds a ``Retry-After`` header asks for (seconds form; an HTTP date is read as none)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _counted(events: list[str]) -> list[str]:
    """``["HTTP 503", "HTTP 503", "x"]`` -> ``["HTTP 503 (2 times)", "x"]``, first-seen order."""
    counts = collections.Counter(events)
    return [event if counts[event] == 1 else f"{event} ({counts[event]} times)" for event in dict.fromkeys(events)]


def _event(kind: str, path: str, key: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"event": kind, "endpoint": path, "request_sha256": key, "model_version": response.get("model")}


def _error_detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error)[:300]
