"""Headless Chromium, for printing the self-contained HTML report to PDF.

The Debian package ``chromium`` (``apt-get install -y chromium``; the set-up installs it) is run with every
network-related background service off, so printing a report makes no request of its own either.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from llm_mia.errors import LlmMiaError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)


def find_chromium() -> str | None:
    """The path of a Chromium-family browser on this machine, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, *, timeout: float = 120.0) -> Path:
    """Print ``html`` (a local file) to ``pdf`` with headless Chromium; raises with the fix when there is none."""
    browser = find_chromium()
    if browser is None:
        raise LlmMiaError("no Chromium found to print the report to PDF; install it with: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="llm-mia-chromium-") as profile:
        command = [
            browser,
            *QUIET_FLAGS,
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf.resolve()}",
            html.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise LlmMiaError(f"Chromium could not print {html} to PDF (exit {result.returncode}): {result.stderr[-500:]}")
    return pdf
