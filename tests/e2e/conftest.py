from __future__ import annotations

import random
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.production_support import REDIS_HOST, REDIS_PORT, fresh_database
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


@pytest.fixture
def metadata_db() -> Iterator[str]:
    """A fresh PostgreSQL database for this test's Airflow, dropped afterwards."""
    with fresh_database("bakery_e2e") as name:
        yield name


@pytest.fixture
def broker_db() -> Iterator[int]:
    """An empty Redis database for this test's Celery broker, emptied afterwards."""
    import redis

    claim = f"bakery-e2e-{secrets.token_hex(4)}"
    for number in random.sample(range(1, 16), 15):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=5)
        try:
            if client.dbsize() == 0 and client.set("bakery-e2e-claim", claim, nx=True):
                break
        except redis.ConnectionError as exc:
            where = f"{REDIS_HOST}:{REDIS_PORT}"
            pytest.skip(f"REDIS NOT REACHABLE at {where} ({exc}); .ci/run starts it")
    else:
        pytest.fail("no empty Redis database (1-15) to use as the Celery broker")
    try:
        yield number
    finally:
        client.flushdb()
        client.close()
