"""Parsing dags/ touches no cloud and starts no process, and a bad catalog fails loudly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.dags import parse_guard
from tests.dags.conftest import DAGS_DIR, REPO_ROOT, set_airflow_environment
from tests.dags.parse_guard import ForbiddenAtParseTime, ParseGuard

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

BAKE_DAG_ID = "golden_image_bake"
BAKE_DAG_FILE = DAGS_DIR / "golden_image_bake.py"
TEMPLATE = REPO_ROOT / "include" / "packer" / "aws-linux.pkr.hcl"
# RFC 5737 TEST-NET-1: never routed, so a real call would hang rather than reach anything.
UNROUTABLE_ENDPOINT = "http://192.0.2.1:9"


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> ParseGuard:
    return parse_guard.install(monkeypatch)


def _bake_dag_import_error(dag_bag: DagBag) -> str:
    for path, error in dag_bag.import_errors.items():
        if Path(path).resolve() == BAKE_DAG_FILE:
            return error
    raise AssertionError(f"no import error for {BAKE_DAG_FILE}; got {dag_bag.import_errors}")


def test_the_guard_blocks_and_records_sockets_and_subprocesses(guard: ParseGuard) -> None:
    with pytest.raises(ForbiddenAtParseTime):
        socket.create_connection(("192.0.2.1", 9), timeout=0.1)
    with socket.socket() as sock, pytest.raises(ForbiddenAtParseTime):
        sock.connect(("192.0.2.1", 9))
    with pytest.raises(ForbiddenAtParseTime):
        urllib.request.urlopen(UNROUTABLE_ENDPOINT, timeout=0.1)
    with pytest.raises(ForbiddenAtParseTime):
        subprocess.run(["true"], check=False)
    with pytest.raises(ForbiddenAtParseTime):
        os.system("true")
    assert len(guard.forbidden) == 5, guard.forbidden


def test_parsing_makes_no_cloud_call_and_starts_no_process(
    monkeypatch: pytest.MonkeyPatch, airflow_home: Path
) -> None:
    """Parse dags/ in a fresh interpreter with the guard on (see parse_guard.py).

    In-process, whatever the session imported earlier would already be loaded and its
    import-time code would escape the guard; a fresh interpreter makes the result the
    same however the tests are ordered or selected.
    """
    set_airflow_environment(monkeypatch, airflow_home)
    # The connection the catalog's images bake through, pointing nowhere reachable:
    # resolving it is fine, using it at parse time is the bug this test catches.
    connection = {
        "conn_type": "aws",
        "login": "AKIAPARSETIMETEST000",
        "password": "parse-time-test-secret",
        "extra": {"endpoint_url": UNROUTABLE_ENDPOINT, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_BAKERY", json.dumps(connection))
    monkeypatch.setenv("AWS_ENDPOINT_URL", UNROUTABLE_ENDPOINT)
    python_path = os.pathsep.join([str(REPO_ROOT / "plugins"), str(REPO_ROOT)])
    monkeypatch.setenv("PYTHONPATH", python_path)

    proc = subprocess.run(
        [sys.executable, "-m", "tests.dags.parse_guard", str(DAGS_DIR)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    lines = [
        line for line in proc.stdout.splitlines() if line.startswith(parse_guard.RESULT_MARKER)
    ]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(parse_guard.RESULT_MARKER))
    assert result["forbidden"] == []
    assert result["import_errors"] == {}
    assert BAKE_DAG_ID in result["dag_ids"]


CATALOG_HEAD = f"""\
images:
  - name: web
    owners: [web-team]
    template: {TEMPLATE}
"""
VALID_TARGETS = """\
    targets:
      aws:
        regions: [us-east-1]
        source: {ami_id: ami-0123456789abcdef0}
"""

BROKEN_CATALOGS = {
    "invalid-region": (
        CATALOG_HEAD
        + """\
    targets:
      aws:
        regions: [us-east-1, mars-north-1]
        source: {ami_id: ami-0123456789abcdef0}
""",
        ["image 'web'", "targets.aws.regions", "mars-north-1"],
    ),
    "misspelt-field": (
        CATALOG_HEAD + "    freshnes_days: 14\n" + VALID_TARGETS,
        ["image 'web'", "freshnes_days"],
    ),
    "missing-template": (
        CATALOG_HEAD.replace(str(TEMPLATE), "packer/does-not-exist.pkr.hcl") + VALID_TARGETS,
        ["image 'web'", "field 'template'", "does-not-exist.pkr.hcl"],
    ),
    "yaml-syntax-error": (
        CATALOG_HEAD + "    targets: {aws: [unclosed\n",
        ["Invalid YAML", "line 6, column 1"],
    ),
}


@pytest.mark.parametrize(
    ("catalog_text", "expected_fragments"),
    list(BROKEN_CATALOGS.values()),
    ids=list(BROKEN_CATALOGS),
)
def test_broken_catalog_is_an_import_error_naming_file_image_and_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    parse_dags: Callable[[], DagBag],
    catalog_text: str,
    expected_fragments: list[str],
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(catalog_text, encoding="utf-8")
    monkeypatch.setenv("BAKERY_CATALOG", str(catalog))

    dag_bag = parse_dags()

    error = _bake_dag_import_error(dag_bag)
    assert "CatalogError" in error, error
    for fragment in [str(catalog), *expected_fragments]:
        assert fragment in error, f"{fragment!r} not in the import error:\n{error}"
    assert BAKE_DAG_ID not in dag_bag.dag_ids
