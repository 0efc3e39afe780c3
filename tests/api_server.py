"""Real OpenAI-compatible servers on loopback for the API-backend tests.

- :func:`start_llama_server`: llama-cpp-python's server (``python -m llama_cpp.server``) on a GGUF, with an API
  key, in its own process (so a test can kill it mid-run and start it again on the same port).
- :class:`FaultyProxy`: a real HTTP server (stdlib) that forwards every request to an upstream API and can
  answer the first N completions requests with 429 and a ``Retry-After`` header; it records every request.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests


def send_json(handler: BaseHTTPRequestHandler, body: bytes, *, status: int = 200) -> None:
    """Answer a request with a JSON body."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A threaded HTTP server on a free loopback port, serving in the background; returns it and its API root."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_llama_server(gguf: Path, port: int, *, api_key: str, alias: str, log: Path) -> subprocess.Popen:
    """Start the server and wait (up to 60 s) until it lists its model."""
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
        "--logits_all", "true", "--n_ctx", "2048", "--n_threads", "1", "--api_key", api_key, "--verbose", "false",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}; see {log}")
        try:
            response = requests.get(
                f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=2
            )
            if response.ok:
                return process
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"llama_cpp.server did not start in 60 s; see {log}")


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(timeout=30)


class FaultyProxy:
    """Forwards to ``upstream`` (an API root's server, e.g. http://127.0.0.1:8000); see module docstring."""

    def __init__(self, upstream: str, *, fail_with_429: int = 0, retry_after: float = 1.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.fail_with_429 = fail_with_429
        self.retry_after = retry_after
        self.log: list[tuple[float, str, str, int]] = []  # (time, method, path, status sent back)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _relay(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if method == "POST" and self.path.endswith("/completions") and proxy.fail_with_429 > 0:
                    proxy.fail_with_429 -= 1
                    self.send_response(429)
                    self.send_header("Retry-After", f"{proxy.retry_after:g}")
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "rate limit reached", "type": "requests"}}')
                    proxy.log.append((time.monotonic(), method, self.path, 429))
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                upstream = requests.request(method, proxy.upstream + self.path, data=body, headers=headers, timeout=120)
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)
                proxy.log.append((time.monotonic(), method, self.path, upstream.status_code))

            def do_GET(self) -> None:  # http.server's naming
                self._relay("GET")

            def do_POST(self) -> None:
                self._relay("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
