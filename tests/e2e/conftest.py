from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sandbox_support import Sandbox, airflow, airflow_env, start_sandbox, stop_sandbox

REQUIRED_TOOLS = ("packer", "debootstrap", "socat", "unshare")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"SANDBOX TOOLS MISSING: {', '.join(missing)} (run `make test`, which installs them)"
        )
    running, started_here = start_sandbox()
    yield running
    if started_here:
        stop_sandbox()


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    result = airflow(airflow_env(sandbox, home), "db", "migrate")
    assert result.returncode == 0, result.stderr[-3000:]
    return home
