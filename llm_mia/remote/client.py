"""An HTTP client for OpenAI-compatible endpoints, careful with a paid API and with the user's key.

- The key is read from the environment variable the user names (default ``OPENAI_API_KEY``) and sent only as
  the ``Authorization`` header. It is never stored on disk, in a record, a log or an error message: every
  message this module builds goes through :meth:`ApiClient.redact` first.
- Retries with exponential back-off on 429 and 5xx and on dropped connections, honouring ``Retry-After``
  (urllib3's ``Retry``, the policy ``requests`` uses; the waits are ``backoff * 2**(n-1)`` seconds, capped at
  ``max_backoff``). A request that still fails gets an error that names the endpoint, the status and the fix.
- Rate limits: at most ``requests_per_second`` requests and ``tokens_per_minute`` prompt tokens (estimated
  as bytes / 4 before the request; OpenAI's rule of thumb) are sent, by sleeping before a request, never by
  dropping one.
- Timeouts on connect and read.
- Concurrency: :func:`concurrently` keeps up to ``concurrency`` requests in flight (threads; results in input
  order). Each request's answer must not depend on the others, which holds for a stateless server; callers that
  talk to a stateful one (forced-token scoring on llama.cpp, whose prompt cache makes a prefix's numbers depend
  on what was evaluated before it) keep to one request at a time.
- Every response can be kept in a :class:`~llm_mia.remote.responses.ResponseCache`, so a rerun or a resumed
  run sends nothing twice (see :meth:`ApiClient.post`).
"""

from __future__ import annotations

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
Item = TypeVar("Item")
Result = TypeVar("Result")


class RemoteError(LlmMiaError):
    """A model behind an API could not serve a request; the message names the endpoint and the fix."""


@dataclass(frozen=True)
class ApiSettings:
    """Where the endpoint is and how carefully to talk to it.

    ``base_url``: the API root including ``/v1`` (``https://api.openai.com/v1``, ``http://127.0.0.1:8000/v1``).
    ``key_env``: the environment variable holding the key (unset: no ``Authorization`` header, as a local
    server needs). ``timeout``: seconds to wait for a response. ``max_retries``: retries on 429, 5xx and
    dropped connections. ``backoff``: first back-off in seconds (doubling). ``requests_per_second`` and
    ``tokens_per_minute``: client-side rate limits (None: none), shared by all concurrent requests.
    ``concurrency``: requests in flight at once (where the caller allows it; see :func:`concurrently`).
    """

    base_url: str
    key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 6
    backoff: float = 0.5
    max_backoff: float = 60.0
    requests_per_second: float | None = None
    tokens_per_minute: float | None = None
    concurrency: int = 1

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
        if self.timeout <= 0 or self.max_retries < 0 or self.backoff < 0:
            raise LlmMiaError("API timeout must be > 0, retries and back-off >= 0")
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
        from urllib3.util.retry import Retry

        self.settings = settings
        key = (os.environ.get(settings.key_env) or "").strip()
        if any(ord(character) < 32 or ord(character) == 127 for character in key):
            raise RemoteError(f"${settings.key_env} holds control characters inside the key; set it to the key alone")
        self._key = key or None
        retry = Retry(
            total=settings.max_retries,
            connect=settings.max_retries,
            read=settings.max_retries,
            status=settings.max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # POST too: our requests are idempotent (no sampling: temperature 0, fixed seed)
            backoff_factor=settings.backoff,
            backoff_max=settings.max_backoff,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self._session = requests.Session()
        pool = max(10, settings.concurrency)
        self._session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=pool))
        self._session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=pool))
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
        """One request (retried as configured); the decoded JSON body, or a :class:`RemoteError`.

        ``path``: relative to the API root (``completions``), or an absolute URL on the same server.
        """
        import requests

        url = path if path.startswith(("http://", "https://")) else f"{self.settings.root}/{path.lstrip('/')}"
        body = None if payload is None else json.dumps(payload)
        self._limiter.wait(len(body or "") / 4)
        try:
            response = self._session.request(
                method, url, data=body, headers=self._headers(), timeout=(10, self.settings.timeout)
            )
        except requests.exceptions.RetryError as error:
            raise RemoteError(
                self.redact(
                    f"{method} {url}: still failing after {self.settings.max_retries} retries "
                    f"({error.__class__.__name__}); "
                    "the server is overloaded or rate-limiting: lower --api-requests-per-second or retry later"
                )
            ) from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as error:
            if _timed_out(error):
                raise RemoteError(
                    f"{method} {url}: no response within {self.settings.timeout:g} s (tried "
                    f"{self.settings.max_retries + 1} times); raise --api-timeout or check the server"
                ) from None
            raise RemoteError(
                self.redact(
                    f"cannot reach {url} (connection failed after {self.settings.max_retries} retries): "
                    "is the server running, and is --api-base right?"
                )
            ) from None
        except requests.exceptions.RequestException as error:  # anything else: its message may hold headers
            raise RemoteError(self.redact(f"{method} {url}: {error.__class__.__name__}: {error}")) from None
        with self._count_lock:
            self.sent += 1
        if response.status_code in (401, 403):
            source = f"${self.settings.key_env}" if self._key else f"no key (${self.settings.key_env} is not set)"
            raise RemoteError(
                f"{url} refused the request (HTTP {response.status_code}) with {source}; set a valid key in "
                f"${self.settings.key_env} (the key is never printed)"
            )
        if response.status_code >= 400:
            detail = _error_detail(response)
            raise RemoteError(self.redact(f"{method} {url}: HTTP {response.status_code}: {detail}"))
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"{method} {url}: the response is not JSON (is --api-base the API root?)") from None

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
        from llm_mia.remote.responses import request_key

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
                    )
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
    done: Callable[[], None] | None = None,
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
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()
                if done is not None:
                    done()
        return [future.result() for future in futures]


def has_choice(response: dict[str, Any]) -> None:
    """A ``check`` for :meth:`ApiClient.post`: the response holds a first choice (raises when it does not)."""
    if not response["choices"]:
        raise IndexError("no choices in the response")


def _timed_out(error: Exception) -> bool:
    """Whether a requests error (a read timeout, also when urllib3's retries wrap it) came from a timeout."""
    import requests
    from urllib3.exceptions import ReadTimeoutError

    if isinstance(error, requests.exceptions.Timeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, ReadTimeoutError)


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
