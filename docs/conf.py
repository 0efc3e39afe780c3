"""Sphinx configuration for the llm-mia documentation site.

Build (offline, warnings are errors, as CI does)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (myst-parser); the API reference is generated from the docstrings (autodoc + napoleon) and the
CLI reference from the real argparse parsers (sphinx-argparse), so neither can drift from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the checkout this file belongs to, not another installed copy

import llm_mia  # noqa: E402

project = "llm-mia"
author = "the llm-mia authors"
copyright = "the llm-mia authors, Apache-2.0"
release = llm_mia.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Markdown: ``{include}`` of benchmarks/RESULTS.md, $...$ maths, heading anchors for links such as
# ``results.md#defenses``, definition lists and ``:::`` fences for notes.
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 4

# autodoc: documented members only, in source order; type hints in the description, not the signature line.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": False}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False

# MathJax is loaded by the browser; the build itself reads nothing from the network.
html_theme = "furo"
html_title = f"llm-mia {release}"
html_static_path = ["_static"]
html_css_files = ["wide.css"]
pygments_style = "sphinx"
smartquotes = False  # "--model" stays two hyphens in headings and prose, as the shell needs it

# docstrings are written for ``help()`` and doctests, not for Sphinx's nitpicky cross-reference resolution
nitpicky = False


def _literal_descriptions() -> None:
    """Show each subcommand's description as ``--help`` prints it (a literal block), not parsed as rST.

    The descriptions are written for the terminal (argparse's RawDescriptionHelpFormatter keeps their line breaks
    and their indented examples); read as reStructuredText, the examples become broken definition lists.
    """
    import textwrap

    import sphinxarg.ext

    parse_parser = sphinxarg.ext.parse_parser

    def parse_with_literal_descriptions(parser, data=None, **kwargs):
        result = parse_parser(parser, data, **kwargs)

        def walk(node: dict) -> None:
            for child in node.get("children", []):
                if child.get("description"):
                    child["description"] = "::\n\n" + textwrap.indent(child["description"].strip("\n"), "    ")
                walk(child)

        walk(result)
        return result

    sphinxarg.ext.parse_parser = parse_with_literal_descriptions


_literal_descriptions()


# ------------------------------------------------------------------------------------------------ docstrings
# The docstrings are written for ``help()`` and the doctests: plain text with rST's ``literals`` and :func:`roles`.
# A few plain-text habits are rST markup by accident: |x| (a substitution), name_ (a link target), *.png (an
# emphasis that never ends), and an indented table after "...:" (a block quote with ragged indentation). This
# reads them as the plain text they are, without editing the library.

_LITERAL_SPANS = re.compile(r"(``.+?``|:[\w:.-]+:`[^`]*`|`[^`]*`_?)")


def _plain_text_habits(line: str) -> str:
    parts = _LITERAL_SPANS.split(line)
    for i in range(0, len(parts), 2):  # outside literals and roles only
        text = parts[i].replace("|", r"\|")
        text = re.sub(r"(?<=\w)_(?=[\s.,;:)\]]|$)", r"\\_", text)
        text = re.sub(r"(?<![\w*])\*(?=[.\w]*(?:\s|$))(?![^*\s]*\*)", r"\\*", text)
        parts[i] = text
    return "".join(parts)


def _literal_displays(lines: list[str]) -> list[str]:
    """'...:' then a blank line then an indented block (not a doctest): show the block as a literal display."""
    out = list(lines)
    for i in range(len(out) - 2):
        line, blank, block = out[i], out[i + 1], out[i + 2]
        if not line.rstrip().endswith(":") or line.rstrip().endswith("::") or blank.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if block.strip() and len(block) - len(block.lstrip()) > indent and not block.lstrip().startswith(">>>"):
            out[i] = line.rstrip() + ":"
    return out


def _read_docstrings_as_written(app, what, name, obj, options, lines: list[str]) -> None:
    literal_indent: int | None = None  # indentation of the "...::" line while inside its literal block
    result = []
    for line in _literal_displays(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and line.strip() and indent <= literal_indent:
            literal_indent = None
        if literal_indent is None and line.rstrip().endswith("::"):
            literal_indent = indent
            result.append(_plain_text_habits(line))
            continue
        in_doctest = line.lstrip().startswith((">>>", "..."))
        result.append(line if literal_indent is not None or in_doctest else _plain_text_habits(line))
    lines[:] = result


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _read_docstrings_as_written, priority=400)  # before napoleon
