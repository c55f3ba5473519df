"""The shell scripts behind the README's commands work on a fresh checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_airflow_environment_creates_a_missing_airflow_home(tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "airflow-home"
    env = {"PATH": os.environ["PATH"], "AIRFLOW_HOME": str(home)}

    result = subprocess.run(
        ["bash", "-c", '. scripts/airflow-env.sh && echo "$AIRFLOW_HOME"'],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == str(home)
    assert home.is_dir()
