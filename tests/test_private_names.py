"""No module imports another module's private names (``from llm_mia.x import _name``), at the top or inside a
function: what one module keeps to itself stays free to change without breaking another."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llm_mia"


def private_imports(source: str) -> list[tuple[int, str, str]]:
    """(line, module, name) of every ``from llm_mia... import _name`` in ``source``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llm_mia"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((node.lineno, node.module or "", alias.name))
    return found


def test_the_rule_sees_a_private_import_inside_a_function() -> None:
    source = "def f():\n    from llm_mia.engine.extract import _hidden, visible\n"
    assert private_imports(source) == [(2, "llm_mia.engine.extract", "_hidden")]
    assert private_imports("from llm_mia import __version__\nfrom os import _exit\n") == []


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name} from {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, module, name in private_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
