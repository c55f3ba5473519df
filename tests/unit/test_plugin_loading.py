"""What Airflow's plugin manager loads from plugins/, in every process (each task's too).

It executes every .py file it finds as a top-level module named by its file stem, so
plugins/.airflowignore keeps it out of the bakery package: otherwise each task re-ran all
of bakery's modules, and one named like a package bakery imports (azure.py) replaced that
package. The UI plugin defers building its FastAPI app to the first request."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bakery.ui.lazy import LazyAsgiApp

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS = REPO_ROOT / "plugins"

_LOAD_PLUGINS = """
import json, sys
from airflow.sdk.plugins_manager import _get_plugins
plugins, errors = _get_plugins()
print(json.dumps({
    "plugins": sorted(plugin.name for plugin in plugins),
    "sources": sorted(str(plugin.source) for plugin in plugins),
    "errors": errors,
    "modules": sorted(sys.modules),
}))
"""


@pytest.fixture(scope="module")
def loaded_by_a_task_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What a fresh interpreter holds after Airflow's task-side plugin loading."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key != "PYTHONPATH"
    }
    env.update(
        AIRFLOW_HOME=str(tmp_path_factory.mktemp("airflow-home")),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO_ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=str(PLUGINS),
    )
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_PLUGINS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_only_the_entry_files_at_the_top_of_plugins_are_plugin_modules(
    loaded_by_a_task_process: dict[str, object],
) -> None:
    assert loaded_by_a_task_process["errors"] == {}
    assert loaded_by_a_task_process["plugins"] == ["bakery"]
    modules = set(loaded_by_a_task_process["modules"])  # type: ignore[arg-type]
    entry_files = {path.stem for path in PLUGINS.glob("*.py")}
    package_files = {path.stem for path in (PLUGINS / "bakery").rglob("*.py")} - entry_files
    assert entry_files <= modules
    assert sorted(package_files & modules) == [], "bakery modules loaded under bare file names"


def test_loading_the_plugins_does_not_import_the_api_server_or_cloud_sdks(
    loaded_by_a_task_process: dict[str, object],
) -> None:
    modules = set(loaded_by_a_task_process["modules"])  # type: ignore[arg-type]
    heavy = {
        "bakery.ui.app",
        "fastapi",
        "airflow.api_fastapi.core_api.security",
        "pyVmomi",
        "azure.mgmt.compute",
    }
    assert sorted(heavy & modules) == []


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
    """Still guarded: a deployment that drops plugins/.airflowignore must not break."""
    imported = _imported_top_level_packages()
    assert "azure" in imported  # the scan sees bakery's own imports
    shadowing = sorted(
        str(path.relative_to(PLUGINS)) for path in PLUGINS.rglob("*.py") if path.stem in imported
    )
    assert shadowing == [], f"rename these plugin modules: {shadowing}"


def test_the_lazy_app_is_built_on_the_first_request_and_only_once() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    builds: list[int] = []

    def factory() -> Starlette:
        builds.append(1)
        return Starlette(routes=[Route("/page", lambda _request: PlainTextResponse("served"))])

    lazy = LazyAsgiApp(factory)
    assert builds == [] and not lazy.built
    transport = httpx.ASGITransport(app=lazy)

    async def two_requests() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://bakery") as client:
            return await client.get("/page"), await client.get("/page")

    first, second = asyncio.run(two_requests())
    assert (first.text, second.text) == ("served", "served")
    assert builds == [1] and lazy.built
