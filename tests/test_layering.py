"""The domain package stays free of frameworks and I/O libraries (STYLE.md)."""

import ast
from pathlib import Path

FORBIDDEN = {"flask", "flask_sqlalchemy", "flask_smorest", "sqlalchemy", "requests", "redis",
             "backend", "psycopg", "werkzeug"}
DOMAIN = Path(__file__).resolve().parent.parent / "campaigns"


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_campaigns_imports_no_framework():
    files = sorted(DOMAIN.rglob("*.py"))
    assert files, "campaigns/ has no modules"
    for path in files:
        bad = imported_roots(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(DOMAIN.parent)} imports {sorted(bad)}"


def test_the_check_itself_catches_a_framework_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from sqlalchemy import select\nimport flask.json\n")
    assert imported_roots(sample) & FORBIDDEN == {"sqlalchemy", "flask"}
