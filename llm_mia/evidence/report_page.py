"""What the three court-facing reports share: one Jinja2 environment with autoescaping on, and the page
skeleton (``templates/page.html.j2``: the Content-Security-Policy, the style, the question, the answer box and
the appendix with the plan and the evidence hash) that the dataset-level, canary and extraction reports extend.

Every value a template prints is HTML-escaped unless the template marks it ``|safe``; only the reports' own
fixed prose (formulas written with HTML entities) is so marked, never a value read from a plan, a result or a
text under test.
"""

from __future__ import annotations

import base64
import functools
import html
import json
from typing import Any

import jinja2
import markupsafe

# The page asks for nothing outside itself: no font, script, frame or request; figures are data URIs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI, so a figure is part of the page.

    >>> data_uri(b"PNG")
    'data:image/png;base64,UE5H'
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def plan_text(plan: dict[str, Any]) -> str:
    """The plan as the appendix prints it: indented JSON, keys sorted, non-ASCII kept."""
    return json.dumps(plan, indent=1, sort_keys=True, ensure_ascii=False)


@functools.cache
def environment() -> jinja2.Environment:
    """The templates under ``llm_mia/evidence/templates`` (shipped as package data), escaped by default; a name a
    template uses but the caller did not give is an error, not an empty string."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("llm_mia.evidence", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["data_uri"] = data_uri
    env.filters["plan_text"] = plan_text
    env.globals["csp"] = markupsafe.Markup(CSP)  # a fixed string of ours, printed as is
    return env


def shows_text(page: str, text: str) -> bool:
    """Whether an HTML report shows ``text``: escaped as these templates escape it (``&#39;``, ``&#34;``) or as
    reports written before them did (``html.escape``: ``&#x27;``, ``&quot;``), so ``llm-mia verify`` reads both.

    >>> shows_text("<p>the work&#39;s p</p>", "the work's p"), shows_text("<p>the work&#x27;s p</p>", "the work's p")
    (True, True)
    """
    return str(markupsafe.escape(text)) in page or html.escape(text, quote=True) in page


def render_page(template: str, **context: Any) -> str:
    """Render one report template (a file name under ``templates/``) with ``context``."""
    return environment().get_template(template).render(**context)
