"""The house's arrows point one way: views -> services -> rules/models/archive, and the PDF
renderers sit below services. Checked by reading imports, so a new module cannot quietly
climb back up."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _modules(package: str):
    return sorted((PORTAL / package).rglob("*.py"))


@pytest.mark.parametrize("package, forbidden", [
    ("rules", ("flask", "portal.services", "portal.documents", "portal.extensions", "portal.models")),
    ("documents", ("flask", "portal.services", "portal.archive", "portal.web")),
])
def test_lower_layers_do_not_import_upper_ones(package, forbidden):
    bad = [f"{path.relative_to(PORTAL)} imports {name}"
           for path in _modules(package) for name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert not bad, bad


def test_services_do_not_import_views():
    views = ("portal.archive", "portal.rosters", "portal.readiness", "portal.billing.views",
             "portal.census.views", "portal.notes.views", "portal.web")
    bad = [f"{path.relative_to(PORTAL)} imports {name}"
           for path in _modules("services") for name in _imports(path)
           if any(name == v or name.startswith(v + ".") for v in views)]
    assert not bad, bad


def test_attendance_minutes_are_rules():
    from portal.rules import attendance_time
    assert callable(attendance_time.minutes_attended) and callable(attendance_time.attended_window)
    assert not (PORTAL / "documents" / "views.py").exists()
