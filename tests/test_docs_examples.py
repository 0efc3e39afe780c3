"""The documentation's examples run, or say why not.

Every fenced code block in ``docs/**/*.md`` and ``README.md`` is one of:

* ```` ```python ````: run. The Python blocks of one page run in order, in one fresh interpreter (so a later block
  can use what an earlier one made, and nothing registered by an example leaks into other tests), in an empty
  temporary directory, offline, with the checkout this test belongs to first on ``sys.path``.
* ```` ```bash ```` (or ``sh``, ``shell``, ``console``): shell commands, which take minutes, a GPU, a cluster or an
  endpoint. Each must follow a marker naming why it is not run here, ``<!-- not run: REASON -->``, or the test that
  runs the same thing, ``<!-- covered by: tests/test_x.py::test_name -->`` (the file must exist and name it).
* any other language (``text``, ``json``, none): output or file contents shown to the reader, not code.

A Python block can be marked ``<!-- not run: REASON -->`` too; the reason must be a phrase, not a word.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*ROOT.glob("docs/**/*.md"), ROOT / "README.md"])
PAGES = [page for page in PAGES if "_build" not in page.parts]

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
MARKER = re.compile(r"<!--\s*(?P<kind>not run|covered by):\s*(?P<text>.*?)\s*-->")
SHELL = {"bash", "sh", "shell", "console"}
PYTHON = {"python", "py"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    marker: tuple[str, str] | None  # (kind, text) of the marker just before the block


def blocks(page: Path) -> list[Block]:
    """Fenced code blocks of a Markdown page (top level and indented, as in list items), with their markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        language = match["info"].strip().split(" ")[0].lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,{indent + 3}}}{re.escape(fence)}\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = MARKER.search(lines[previous]) if previous >= 0 else None
        if language.startswith("{"):  # a MyST directive ({eval-rst}, {include}, {toctree}): not an example
            continue
        note = (marker["kind"], marker["text"]) if marker else None
        found.append(Block(page, start + 1, language, "\n".join(body) + "\n", note))
    return found


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def test_the_pages_have_examples() -> None:
    assert len(PAGES) > 10, PAGES
    assert sum(block.language in PYTHON for block in ALL_BLOCKS) >= 5


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: f"{_id(b.page)}:{b.line}")
def test_every_block_is_run_or_says_why_not(block: Block) -> None:
    where = f"{_id(block.page)}:{block.line}"
    if block.marker is None:
        assert block.language not in SHELL, (
            f"{where}: a shell example needs <!-- not run: REASON --> or <!-- covered by: tests/FILE::TEST --> "
            "on the line before it"
        )
        return
    kind, text = block.marker
    assert block.language in SHELL | PYTHON, f"{where}: a {kind!r} marker on a {block.language or 'plain'} block"
    if kind == "not run":
        assert len(text.split()) >= 3, f"{where}: say why the example is not run, in a phrase: {text!r}"
        return
    path, _, name = text.partition("::")
    assert (ROOT / path).is_file(), f"{where}: covered by {path}, which does not exist"
    if name:
        assert re.search(rf"\bdef {re.escape(name)}\b", (ROOT / path).read_text()), f"{where}: {path} has no {name}"


def _private_cache(path: Path) -> Path:
    """A cache root of the test's own (stats cache, logs), sharing only the converted models with the user's, as
    the rest of the suite does: examples never read or write the user's stats cache, and the packaged model is
    converted once, not once per page."""
    user = Path(os.environ.get("LLM_MIA_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"))
    user = user if os.environ.get("LLM_MIA_CACHE") else user / "llm-mia"
    (user / "models").mkdir(parents=True, exist_ok=True)
    path.mkdir(parents=True)
    (path / "models").symlink_to(user / "models", target_is_directory=True)
    return path


def _runnable(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.language in PYTHON and block.marker is None]


RUNNABLE_PAGES = [page for page in PAGES if _runnable(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=_id)
def test_python_examples_run(page: Path, tmp_path: Path) -> None:
    """One interpreter per page; a failing block is named by its page and line."""
    # each block compiled under its page and line, so a traceback names the example, not a temporary file
    script = tmp_path / "example.py"
    script.write_text(
        "".join(
            f"exec(compile({block.code!r}, {f'{_id(page)}, block at line {block.line}'!r}, 'exec'))\n"
            for block in _runnable(page)
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["LLM_MIA_CACHE"] = str(_private_cache(tmp_path / "cache"))
    env.setdefault("HF_HUB_OFFLINE", "1")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{_id(page)}: an example failed\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"


def test_the_readme_is_a_front_page_that_names_every_command() -> None:
    """The README stays short, starts with the two commands CI runs, and its table lists every subcommand."""
    from llm_mia.cli import SUBCOMMANDS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move detail into docs/"
    first = next(block for block in blocks(ROOT / "README.md"))
    assert "bash scripts/setup.sh && llm-mia demo" in first.code and "python -m pytest" in first.code
    listed = set(re.findall(r"^\| `([a-z-]+)` \|", text, flags=re.M))
    missing = [name for name, _, _ in SUBCOMMANDS if name not in listed]
    assert not missing, f"README.md's command table lacks {missing}"
    for target in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)", text):
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"
