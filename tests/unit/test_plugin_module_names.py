"""Airflow's plugin manager imports every .py file under plugins/ by its bare file name,
so a module named like a top-level package bakery imports (plugins/.../azure.py) replaces
that package in the task process: `import azure.core` then fails in every task."""

from __future__ import annotations

import ast
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def _imported_top_level_packages() -> set[str]:
    names: set[str] = set()
    for path in PLUGINS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - {"bakery"}


def test_no_plugin_module_shadows_a_package_bakery_imports() -> None:
    imported = _imported_top_level_packages()
    assert "azure" in imported  # the scan sees bakery's own imports
    shadowing = sorted(
        str(path.relative_to(PLUGINS)) for path in PLUGINS.rglob("*.py") if path.stem in imported
    )
    assert shadowing == [], f"rename these plugin modules: {shadowing}"
