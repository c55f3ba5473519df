"""The README's first command: `make demo` bakes the shipped catalog through the bake DAG
in the sandbox (skipping what is unchanged since the last bake) and prints the freshness
report. This runs its script as the Makefile does (after `make setup`), against the
session's sandbox, with an Airflow home of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bakery.catalog import load_catalog
from tests.e2e.sandbox_support import REPO_ROOT, Sandbox

pytestmark = pytest.mark.timeout(900)


def test_the_demo_bakes_every_catalog_target_and_reports_it_fresh(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # A caller's Airflow or catalog settings stay out; the sandbox's (its ports) stay in.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "BAKERY_")) or key.startswith("BAKERY_SANDBOX_")
    }
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    result = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for target in load_catalog().bake_targets():
        # A manual run skips a target whose current image is unchanged (what a second
        # `make demo` does, and what earlier tests on this sandbox leave): the demo says so.
        told = (f"{target.label}: baked ", f"{target.label}: not baked: ")
        assert any(line in output for line in told), f"{target.label} not reported:\n{output}"
        fresh = f"[OK] FRESH: 'bakery-{target.image}-"
        region = f"({target.cloud.value}/{target.region})"
        assert any(fresh in line and region in line for line in output.splitlines()), output
