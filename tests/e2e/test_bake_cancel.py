"""Killing a bake at any moment leaves no cloud resource behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bakery.operators.packer import PackerBuildOperator
from bakery.packer import PackerCancelledError
from tests.e2e.sandbox_support import (
    REPO_ROOT,
    Sandbox,
    bake_in_background,
    shell_image,
    write_catalog,
)

SLOW_SCRIPT = "#!/bin/sh\necho provisioning-started\nsleep 300\n"
NOTHING_LEFT = {"instances": [], "security_groups": [], "key_pairs": []}


def _wait_until_clean(sandbox: Sandbox, timeout: float = 90.0) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    leftovers = sandbox.leftovers()
    while leftovers != NOTHING_LEFT and time.monotonic() < deadline:
        time.sleep(0.5)
        leftovers = sandbox.leftovers()
    return leftovers


def _wait_for_provisioning(sandbox: Sandbox, image: str) -> None:
    instance = sandbox.wait_for_instance("bakery:image", image)
    console = sandbox.config.instances_dir / instance / "console.log"
    deadline = time.monotonic() + 60
    # Packer's SSH session shows up in the stand-in's sshd log once provisioning starts.
    while "Accepted publickey" not in (console.read_text() if console.exists() else ""):
        assert time.monotonic() < deadline, "Packer never connected to the builder"
        time.sleep(0.2)
    time.sleep(1)


@pytest.fixture
def slow_catalog(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    images = [shell_image(tmp_path, name, SLOW_SCRIPT) for name in ("slow", "killed")]
    catalog = write_catalog(tmp_path, images)
    monkeypatch.setenv("BAKERY_CATALOG", str(catalog))
    return catalog


def test_on_kill_during_provisioning_cancels_packer_and_leaves_nothing(
    sandbox: Sandbox, slow_catalog: Path
) -> None:
    operator = PackerBuildOperator(
        task_id="packer_build",
        target={"image": "slow", "cloud": "aws", "region": "us-east-1"},
        catalog_path=str(slow_catalog),
    )
    bake = bake_in_background(operator, "test__on_kill")
    _wait_for_provisioning(sandbox, "slow")

    operator.on_kill()
    bake.thread.join(timeout=120)

    assert not bake.thread.is_alive()
    assert bake.outcome and isinstance(bake.outcome[0], PackerCancelledError), bake.outcome
    assert _wait_until_clean(sandbox) == NOTHING_LEFT
    assert sandbox.images_tagged("bakery:image", "slow") == []
    assert sandbox.snapshots_tagged("bakery:image", "slow") == []


def test_sigkill_of_the_task_process_still_lets_packer_clean_up(
    sandbox: Sandbox, slow_catalog: Path
) -> None:
    bake = (
        "from bakery.operators.packer import PackerBuildOperator\n"
        "PackerBuildOperator(task_id='packer_build',"
        " target={'image': 'killed', 'cloud': 'aws', 'region': 'us-east-1'},"
        f" catalog_path={str(slow_catalog)!r}).execute({{'run_id': 'test__sigkill'}})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")}
    task = subprocess.Popen(
        [sys.executable, "-c", bake],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_provisioning(sandbox, "killed")

    task.kill()  # what an OOM kill or a lost worker does: no on_kill, no cleanup code
    task.wait()

    assert _wait_until_clean(sandbox) == NOTHING_LEFT
    assert sandbox.images_tagged("bakery:image", "killed") == []
    assert sandbox.snapshots_tagged("bakery:image", "killed") == []
