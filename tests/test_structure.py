"""The structure rules the code keeps (read from the source, not from the engine): one-way
dependencies (the engine never imports the service), a docstring saying what every module is
for, no one-letter module aliases."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p for pkg in ("engine", "api") for p in (ROOT / pkg).rglob("*.py")
                 if "__pycache__" not in p.parts)


def _imports(tree: ast.AST) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, a.asname) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out += [(f"{node.module}.{a.name}", a.asname) for a in node.names]
    return out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_rules(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(ROOT)
    doc = ast.get_docstring(tree)
    assert doc and doc.strip(), f"{rel}: no module docstring saying what it is for"
    for name, alias in _imports(tree):
        if rel.parts[0] == "engine":
            assert not (name == "api" or name.startswith("api.")), \
                f"{rel} imports {name}: the engine must never import the service"
        assert alias is None or len(alias) > 1, f"{rel}: one-letter module alias {alias!r}"
