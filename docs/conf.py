"""Sphinx configuration for the llm-mia documentation site.

Build (offline, warnings are errors, as CI does)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (myst-parser); the API reference is generated from the docstrings (autodoc + napoleon) and the
CLI reference from the real argparse parsers (sphinx-argparse), so neither can drift from the code.
"""

from __future__ import annotations

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
html_static_path: list[str] = []
pygments_style = "sphinx"

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
