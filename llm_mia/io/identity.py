"""What identifies a file, a text, a run: SHA-256 hashes, package versions, the source commit, the cache root.

The one home for these, so every record (run records, calibration files, benchmark reports, training
records) hashes and versions things the same way. Standard library only: importing it costs nothing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

PACKAGES = ("llm-mia", "torch", "transformers", "numpy", "scipy", "scikit-learn", "pandas")


def cache_dir() -> Path:
    """Root of llm-mia's on-disk cache: ``$LLM_MIA_CACHE``, else ``$XDG_CACHE_HOME/llm-mia``, else
    ``~/.cache/llm-mia``."""
    if os.environ.get("LLM_MIA_CACHE"):
        return Path(os.environ["LLM_MIA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llm-mia"


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, read in chunks (a multi-GB checkpoint never sits in memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes: the identity of a text wherever it appears.

    >>> sha256_text("abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_texts(texts: Sequence[str]) -> str:
    """Hash of an ordered list of texts (each length-prefixed, so boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def sha256_json_key(payload: bytes, length: int = 16) -> str:
    """A short content key (first ``length`` hex digits of SHA-256) for cache directory names."""
    return hashlib.sha256(payload).hexdigest()[:length]


def hash_directory(directory: str | Path) -> dict[str, str]:
    """SHA-256 of every file below a directory (relative posix path -> digest), sorted by path."""
    directory = Path(directory)
    return {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def package_version(package: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Python and package versions, for records."""
    return {"python": platform.python_version(), **{name: package_version(name) for name in packages}}


@functools.cache
def source_commit() -> str | None:
    """The git commit of the llm-mia source this process runs (``+dirty`` when it has local changes).

    None when the package is not run from a git checkout (an installed wheel) or git is missing.
    """
    root = Path(__file__).resolve().parents[2]  # llm_mia/io/identity.py -> the checkout
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head
