"""The freshness audit against a private moto server holding hundreds of images in two
regions with chosen creation dates: exact statuses and counts with a frozen now, the
`python -m bakery.audit` command, and the audit DAG under `airflow dags test`.

Not the sandbox: this module starts its own moto server (tests.e2e.moto_support) and
needs neither Packer nor stand-in VMs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.moto_support import (
    DEBIAN_OWNER,
    MotoServer,
    ami,
    ami_id,
    keep_only_in_region,
    moto_server,
)
from tests.e2e.sandbox_support import CLEANUP_SCRIPT, REPO_ROOT, WEB_TEMPLATE

# Whole seconds: moto keeps creation dates to the second. Later clock readings (the CLI,
# the DAG run) see the same whole-day ages for the next 24 h.
FROZEN_NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
REGIONS = ("us-east-1", "eu-west-1")
BASE_FRESH = "ami-0deb1200000000f5e"
BASE_OLD = "ami-0deb12000000001d5"
REGION_TAG = "e2e:region"  # which region an image belongs to (moto loads all everywhere)


@dataclass
class World:
    """What the moto server holds and what the audit must say about it."""

    server: MotoServer
    catalog_path: Path
    expected: dict[str, str] = field(default_factory=dict)  # image id -> status
    names: dict[str, str] = field(default_factory=dict)  # label -> image id
    instance_id: str = ""

    def id_of(self, label: str) -> str:
        return self.names[label]


class _Planner:
    """Builds the AMI list, recording each image's expected status as it goes."""

    def __init__(self) -> None:
        self.amis: list[dict[str, Any]] = [
            ami(BASE_FRESH, "debian-12-fresh", FROZEN_NOW - 10 * DAY, owner_id=DEBIAN_OWNER),
            ami(BASE_OLD, "debian-12-old", FROZEN_NOW - 200 * DAY, owner_id=DEBIAN_OWNER),
        ]
        self.expected: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.by_region: dict[str, list[str]] = {region: [] for region in REGIONS}
        self._next = 0x100

    def add(
        self,
        label: str,
        image: str,
        region: str,
        age: timedelta,
        expected: str | None,
        *,
        current: bool = False,
        promoted: bool = False,
        base: str | None = BASE_FRESH,
        managed: bool = True,
    ) -> str:
        self._next += 1
        image_id = ami_id(self._next)
        tags = {REGION_TAG: region}
        if managed:
            tags |= {"bakery:managed": "true", "bakery:image": image}
        if base:
            tags["bakery:source-image"] = base
        if current:
            tags["bakery:channel"] = "stable"
        if current or promoted:
            tags["bakery:promoted-at"] = "2026-01-01T00:00:00Z"
        if promoted and not current:
            tags["bakery:superseded-at"] = "2026-01-02T00:00:00Z"
        self.amis.append(ami(image_id, label, FROZEN_NOW - age, tags))
        self.by_region[region].append(image_id)
        self.names[label] = image_id
        if expected:
            self.expected[image_id] = expected
        return image_id

    def bulk(self, image: str, region: str, count: int) -> None:
        """Old promoted versions (STALE) and failed-smoke ones (never promoted, FRESH)."""
        for i in range(count):
            label = f"{image}-{region}-v{i:03}"
            if i % 3 == 0:
                age = (1 + i % 29) * DAY + 5 * timedelta(hours=1)
                self.add(label, image, region, age, "FRESH")
            else:
                self.add(label, image, region, (32 + i) * DAY, "STALE", promoted=True)


def _plan() -> _Planner:
    plan = _Planner()
    # web in us-east-1: a fresh current image, two superseded ones still in use (an
    # instance, a launch template), and the day boundary: 30 days fresh, 31 stale.
    plan.add("web-use1-current", "web", "us-east-1", 2 * DAY, "FRESH", current=True)
    plan.add("web-use1-prev", "web", "us-east-1", 9 * DAY, "SUPERSEDED_IN_USE", promoted=True)
    plan.add("web-use1-prev2", "web", "us-east-1", 16 * DAY, "SUPERSEDED_IN_USE", promoted=True)
    plan.add("web-use1-30d", "web", "us-east-1", 30 * DAY, "FRESH", promoted=True)
    plan.add("web-use1-31d", "web", "us-east-1", 31 * DAY, "STALE", promoted=True)
    plan.bulk("web", "us-east-1", 60)
    # web in eu-west-1: its current image is exactly 31 days old, so web is re-baked.
    plan.add("web-euw1-current", "web", "eu-west-1", 31 * DAY, "STALE", current=True)
    plan.add("web-euw1-30d", "web", "eu-west-1", 30 * DAY, "FRESH")
    plan.bulk("web", "eu-west-1", 60)
    # api: exactly 30 days in us-east-1 (fresh, no re-bake); a stale base in eu-west-1.
    plan.add("api-use1-current", "api", "us-east-1", 30 * DAY, "FRESH", current=True)
    plan.bulk("api", "us-east-1", 60)
    plan.add("api-euw1-current", "api", "eu-west-1", DAY, "BASE_STALE", current=True, base=BASE_OLD)
    plan.bulk("api", "eu-west-1", 60)
    # batch: fine in us-east-1, and nothing at all in eu-west-1 (MISSING).
    plan.add("batch-use1-current", "batch", "us-east-1", 5 * DAY, "FRESH", current=True)
    plan.bulk("batch", "us-east-1", 40)
    # Never reported: an image no longer in the catalog, and images bakery did not make.
    for i in range(10):
        plan.add(f"retired-{i}", "retired", "us-east-1", 400 * DAY, None)
        for region in REGIONS:
            plan.add(f"hand-made-{region}-{i}", "", region, 500 * DAY, None, managed=False)
    return plan


def _write_catalog(folder: Path) -> Path:
    def image(name: str, regions: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "template": str(WEB_TEMPLATE),
            "targets": {"aws": {"regions": regions}},
        }

    document = {
        "defaults": {
            "owners": ["platform-team"],
            "cleanup_script": str(CLEANUP_SCRIPT),
            "targets": {
                "aws": {
                    "connection_id": "aws_bakery",
                    "source": {"name": "debian-12-*", "owners": [DEBIAN_OWNER]},
                }
            },
        },
        "images": [
            image("web", list(REGIONS)),
            image("api", list(REGIONS)),
            image("batch", list(REGIONS)),
        ],
    }
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("audit-moto")
    plan = _plan()
    with moto_server(plan.amis, folder / "moto") as server:
        for region in REGIONS:
            foreign = [i for r, ids in plan.by_region.items() if r != region for i in ids]
            keep_only_in_region(server, region, foreign, "bakery:managed")
        ec2 = server.client("ec2", "us-east-1")
        instance_id = ec2.run_instances(
            ImageId=plan.names["web-use1-prev"], MinCount=1, MaxCount=1, InstanceType="t3.micro"
        )["Instances"][0]["InstanceId"]
        # The current image in use changes nothing: it is not superseded.
        ec2.run_instances(
            ImageId=plan.names["web-use1-current"], MinCount=1, MaxCount=1, InstanceType="t3.micro"
        )
        ec2.create_launch_template(
            LaunchTemplateName="web-fleet",
            LaunchTemplateData={
                "ImageId": plan.names["web-use1-prev2"],
                "InstanceType": "t3.micro",
            },
        )
        yield World(
            server=server,
            catalog_path=_write_catalog(folder),
            expected=plan.expected,
            names=plan.names,
            instance_id=instance_id,
        )


def _expected_counts(world: World) -> dict[str, int]:
    counts = Counter(world.expected.values())
    counts["MISSING"] = 1
    return {
        status: counts.get(status, 0)
        for status in ("FRESH", "STALE", "MISSING", "SUPERSEDED_IN_USE", "BASE_STALE")
    }


def _expected_lines(world: World) -> list[str]:
    return [
        "--- Golden Image Freshness Audit ---",
        "[???] MISSING: no image of 'batch' in aws/eu-west-1. Bake it.",
        "[!!!] STALE: 'web-use1-31d' is 31 days old! Re-bake suggested. (aws/us-east-1)",
        "[!!!] STALE: 'web-euw1-current' is 31 days old! Re-bake suggested. (aws/eu-west-1)",
        "[OK] FRESH: 'web-use1-30d' is 30 days old. (aws/us-east-1)",
        "[OK] FRESH: 'api-use1-current' is 30 days old. (aws/us-east-1)",
        f"[!!] SUPERSEDED_IN_USE: 'web-use1-prev' is 9 days old and superseded by"
        f" {world.id_of('web-use1-current')}, but instance {world.instance_id} still uses it."
        " Move it to the current image. (aws/us-east-1)",
        f"[!!] SUPERSEDED_IN_USE: 'web-use1-prev2' is 16 days old and superseded by"
        f" {world.id_of('web-use1-current')}, but launch template web-fleet v1 still uses it."
        " Move it to the current image. (aws/us-east-1)",
        f"[!!] BASE_STALE: 'api-euw1-current' is 1 days old, but its source image {BASE_OLD}"
        " is 200 days old! Re-bake on a newer base suggested. (aws/eu-west-1)",
        "[OK] FRESH: 'web-use1-current' is 2 days old. (aws/us-east-1)",
    ]


def _check_report(report: dict[str, Any], world: World) -> None:
    rows = [row for row in report["rows"] if row["status"] != "MISSING"]
    assert {row["image_id"]: row["status"] for row in rows} == world.expected
    assert report["counts"] == _expected_counts(world)
    assert report["total"] == len(world.expected) + 1 == 291
    assert report["rebake"] == ["batch", "web"]
    missing = [row for row in report["rows"] if row["status"] == "MISSING"]
    assert [(r["image"], r["cloud"], r["region"]) for r in missing] == [
        ("batch", "aws", "eu-west-1")
    ]
    assert report["rows"][0]["status"] == "MISSING"  # missing first, then stalest
    ages = [row["age_days"] for row in report["rows"][1:]]
    assert ages == sorted(ages, reverse=True)
    by_id = {row["image_id"]: row for row in rows}
    prev = by_id[world.id_of("web-use1-prev")]
    assert prev["in_use_by"] == f"instance {world.instance_id}"
    assert prev["superseded_by"] == world.id_of("web-use1-current")
    assert prev["current"] is False and prev["channel"] == "stable"
    current = by_id[world.id_of("web-use1-current")]
    assert current["current"] is True and current["source_age_days"] == 10
    base_stale = by_id[world.id_of("api-euw1-current")]
    assert (base_stale["source_image_id"], base_stale["source_age_days"]) == (BASE_OLD, 200)
    assert by_id[world.id_of("web-use1-30d")]["age_days"] == 30
    assert report["stale_after_days"] == {
        "default": 30,
        "override": None,
        "by_image": {"web": 30, "api": 30, "batch": 30},
    }


def _check_lines(text: str, world: World, *, whole_lines: bool = True) -> None:
    lines = text.splitlines()
    for expected in _expected_lines(world):
        if whole_lines:
            assert expected in lines, f"no line {expected!r}"
        else:
            assert any(expected in line for line in lines), f"no line with {expected!r}"
    assert not any("retired" in line or "hand-made" in line for line in lines)


# --- in process, with a frozen now ---------------------------------------------------------


@pytest.fixture
def connection_env(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_BAKERY", world.server.connection_uri())
    monkeypatch.setenv("BAKERY_CATALOG", str(world.catalog_path))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))


@pytest.mark.usefixtures("connection_env")
def test_audit_classifies_every_image_and_counts_its_api_calls(world: World) -> None:
    from bakery.audit import audit
    from bakery.catalog import load_catalog
    from bakery.freshness import render_text

    outcome = audit(load_catalog(world.catalog_path), now=FROZEN_NOW)

    _check_report(outcome.report, world)
    _check_lines(render_text(outcome.results), world)
    # The header, then MISSING first, then the stalest image (the oldest bulk version).
    text = render_text(outcome.results).splitlines()
    assert text[:2] == _expected_lines(world)[:2]
    assert (
        text[2]
        == "[!!!] STALE: 'api-eu-west-1-v059' is 91 days old! Re-bake suggested. (aws/eu-west-1)"
    )
    # Per region: one page of bakery's images, the instances and launch templates that
    # use them, one batch of source images; never one call per image.
    calls = {
        location.location.region: dict(location.api_calls)
        for location in outcome.inventory.locations
    }
    assert calls == {
        "us-east-1": {
            "DescribeImages": 2,
            "DescribeInstances": 1,
            "DescribeLaunchTemplates": 1,
            "DescribeLaunchTemplateVersions": 1,
        },
        "eu-west-1": {
            "DescribeImages": 2,
            "DescribeInstances": 1,
            "DescribeLaunchTemplates": 1,
        },
    }
    assert outcome.report["inventory"]["api_calls"] == outcome.inventory.api_calls == 9


@pytest.mark.usefixtures("connection_env")
def test_stale_after_days_override_reclassifies(world: World) -> None:
    from bakery.audit import audit
    from bakery.catalog import load_catalog

    report = audit(load_catalog(world.catalog_path), now=FROZEN_NOW, stale_after_days=29).report
    rows = {row["image_id"]: row for row in report["rows"]}
    assert rows[world.id_of("web-use1-30d")]["status"] == "STALE"
    assert rows[world.id_of("api-use1-current")]["status"] == "STALE"
    assert rows[world.id_of("web-use1-30d")]["threshold_days"] == 29
    assert report["rebake"] == ["api", "batch", "web"]
    assert report["stale_after_days"]["override"] == 29


# --- the command line ----------------------------------------------------------------------


def _cli_env(world: World, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_AWS_BAKERY": world.server.connection_uri(),
        "BAKERY_CATALOG": str(world.catalog_path),
        "PYTHONPATH": str(REPO_ROOT / "plugins"),
    }


def test_command_line_prints_the_text_report_and_writes_json(world: World, tmp_path: Path) -> None:
    env = _cli_env(world, tmp_path / "home")
    text = subprocess.run(
        [sys.executable, "-m", "bakery.audit"], env=env, capture_output=True, text=True, timeout=300
    )
    assert text.returncode == 0, text.stderr[-3000:]
    lines = text.stdout.splitlines()
    assert lines[:2] == _expected_lines(world)[:2]
    _check_lines(text.stdout, world)

    written = tmp_path / "out" / "report.json"
    as_json = subprocess.run(
        [sys.executable, "-m", "bakery.audit", "--json", "--write", str(written)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    printed = json.loads(as_json.stdout)
    _check_report(printed, world)
    assert json.loads(written.read_text())["rows"] == printed["rows"]


# --- the DAG under `airflow dags test` -------------------------------------------------------


def _airflow_env(world: World, home: Path) -> dict[str, str]:
    return {
        **_cli_env(world, home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "BAKERY_TASK_RETRIES": "0",
    }


def _airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "airflow"), *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _query(home: Path, sql: str, *args: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "airflow.db") as db:
        return db.execute(sql, args).fetchall()


def test_audit_dag_logs_the_report_writes_json_and_rebakes_only_when_asked(
    world: World, tmp_path: Path
) -> None:
    home = tmp_path / "airflow-home"
    env = _airflow_env(world, home)
    for step in (("db", "migrate"), ("dags", "reserialize")):
        result = _airflow(env, *step)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run = _airflow(env, "dags", "test", "golden_image_audit")

    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert "state=success" in output
    _check_lines(output, world, whole_lines=False)  # log lines carry a time and a level
    assert "BAKERY FRESHNESS ALERT: re-bake batch, web" in output
    report = json.loads((home / "bakery" / "freshness.json").read_text())
    _check_report(report, world)
    (summary,) = _query(
        home,
        "select value from xcom where dag_id = ? and task_id = 'audit' and key = 'return_value'",
        "golden_image_audit",
    )[0:1]
    xcom = json.loads(summary[0])
    assert xcom["counts"] == _expected_counts(world)
    assert xcom["rebake"] == ["batch", "web"]
    assert xcom["report_path"] == str(home / "bakery" / "freshness.json")
    states = dict(
        _query(home, "select task_id, state from task_instance where dag_id = 'golden_image_audit'")
    )
    assert states == {"audit": "success", "select_rebake": "success", "trigger_rebake": "skipped"}
    assert _query(home, "select count(*) from dag_run where dag_id = 'golden_image_bake'") == [(0,)]

    rebake = _airflow(env, "dags", "test", "golden_image_audit", "--conf", '{"auto_rebake": true}')

    output = rebake.stdout + rebake.stderr
    assert rebake.returncode == 0, output[-5000:]
    triggered = _query(home, "select conf from dag_run where dag_id = 'golden_image_bake'")
    assert [json.loads(conf) for (conf,) in triggered] == [{"images": ["batch", "web"]}]
