"""The bake under the production topology (docker-compose.yaml's shape, run natively):
PostgreSQL metadata database, Redis broker, CeleryExecutor, and api-server, scheduler,
dag-processor, triggerer and Celery workers as separate processes, driven through the
REST API like an operator would."""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bakery.catalog import BakeTarget, Cloud
from bakery.constants import BAKE_DAG_ID
from tests.e2e.production_support import (
    SHORT_RETRY_POLICY,
    ProductionAirflow,
    production_airflow,
)
from tests.e2e.sandbox_support import Sandbox, tags_of

WEB_US_EAST = BakeTarget(image="web", cloud=Cloud.AWS, region="us-east-1")
# Under the real scheduler a bake (Packer, smoke test boot, promotion) takes minutes.
RUN_TIMEOUT = 900
pytestmark = pytest.mark.timeout(RUN_TIMEOUT + 600)


def _catalog_targets() -> list[BakeTarget]:
    """Every target of the sandbox catalog: the weekly bake's whole fan-out."""
    from bakery.catalog import load_catalog

    return load_catalog().bake_targets()


def _promoted(sandbox: Sandbox, target: BakeTarget, run_id: str) -> list[dict[str, Any]]:
    return [
        image
        for image in sandbox.images_tagged("bakery:channel", "stable", target.region)
        if tags_of(image).get("bakery:image") == target.image
        and tags_of(image).get("bakery:dag-run-id") == run_id
    ]


def _live_builders(sandbox: Sandbox, region: str, run_id: str) -> list[str]:
    return [
        instance["InstanceId"]
        for reservation in sandbox.ec2(region).describe_instances(
            Filters=[
                {"Name": "tag:bakery:role", "Values": ["builder"]},
                {"Name": "tag:bakery:dag-run-id", "Values": [run_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping"]},
            ]
        )["Reservations"]
        for instance in reservation["Instances"]
    ]


def _seconds(run: dict[str, Any]) -> float:
    """Queued (the trigger) to finished, as the scheduler recorded it."""
    start = run.get("queued_at") or run["start_date"]
    return (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(start)).total_seconds()


def _phases(tasks: list[dict[str, Any]]) -> str:
    """Per task (mapped ones together): first start to last end, in the order they ran."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for task in tasks:
        if not (task["start_date"] and task["end_date"]):
            continue
        name = task["task_id"].split(".")[-1]
        start = datetime.fromisoformat(task["start_date"])
        end = datetime.fromisoformat(task["end_date"])
        first, last = spans.get(name, (start, end))
        spans[name] = (min(first, start), max(last, end))
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    return ", ".join(
        f"{name} {(end - begin).total_seconds():.0f} s" for name, (begin, end) in ordered
    )


def _plain_packer_builds(sandbox: Sandbox, work: Path, monkeypatch: pytest.MonkeyPatch) -> float:
    """`packer build` of every target, one after the other, with the var-file the operator
    writes (same template, variables and tags); returns the seconds the builds took
    together. Their images are deleted afterwards."""
    from bakery.bake import (
        artifact_name,
        aws_packer_variables,
        bake_id,
        bake_tags,
        image_variables,
        template_hash,
        write_var_file,
    )
    from bakery.catalog import load_catalog
    from bakery.hooks.aws import BakeryEc2Hook
    from bakery.operators.packer import INHERITED_ENV

    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    catalog = load_catalog()
    run_id = f"plain_packer__{secrets.token_hex(4)}"
    total = 0.0
    for target in catalog.bake_targets():
        image = catalog.image(target.image)
        aws = image.targets.aws
        assert aws is not None, f"{target.label}: the sandbox catalog bakes AWS only"
        template = catalog.template_path(image)
        variables = image_variables(image, catalog.include_dir)
        hook = BakeryEc2Hook(aws_conn_id=aws.connection_id, region_name=target.region)
        bake = bake_id(dag_id="plain-packer", run_id=run_id, target=target)
        source = hook.resolve_source_image(aws.source)
        folder = work / target.image / target.region
        folder.mkdir(parents=True)
        var_file = write_var_file(
            folder / "bake.pkrvars.json",
            aws_packer_variables(
                variables=variables,
                aws=aws,
                region=target.region,
                ami_name=artifact_name(image, started=datetime.now(UTC), bake=bake),
                source_ami_id=source.image_id,
                subnet_id=hook.find_subnet(aws.subnet_tags) if aws.subnet_tags else "",
                ec2_endpoint=hook.endpoint_url or "",
                manifest_path=folder / "manifest.json",
                tags=bake_tags(
                    image=image,
                    bake=bake,
                    source_image_id=source.image_id,
                    template_digest=template_hash(template, variables),
                    dag_run_id=run_id,
                ),
            ),
        )
        env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
        env.update(hook.packer_environment(), CHECKPOINT_DISABLE="1", HOME=str(folder))
        log = folder / "packer.log"
        started = time.monotonic()
        with log.open("wb") as output:
            result = subprocess.run(
                [
                    "packer",
                    "build",
                    "-machine-readable",
                    "-color=false",
                    f"-var-file={var_file}",
                    str(template),
                ],
                cwd=folder,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=RUN_TIMEOUT,
            )
        total += time.monotonic() - started
        assert result.returncode == 0, f"plain packer build failed:\n{log.read_text()[-4000:]}"
        for baked in hook.iter_managed_images(extra_filters={"bakery:bake-id": bake}):
            hook.delete_image(baked)
    return total


def test_weekly_bake_of_the_catalog_runs_under_the_celery_executor_and_promotes_everything(
    sandbox: Sandbox,
    metadata_db: str,
    broker_db: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    targets = _catalog_targets()
    assert len(targets) >= 2, f"the sandbox catalog should fan out, has {targets}"

    with production_airflow(
        sandbox,
        tmp_path / "airflow",
        database=metadata_db,
        redis_db=broker_db,
        BAKERY_TASK_RETRIES="0",
    ) as airflow:
        airflow.start_ready(BAKE_DAG_ID)

        # What the Sunday run bakes: every target (a manual run skips unchanged ones).
        run = airflow.trigger(BAKE_DAG_ID, {"force": True})
        run_id = run["dag_run_id"]
        run = airflow.wait_for_run(BAKE_DAG_ID, run_id, timeout=RUN_TIMEOUT)
        scheduled = _seconds(run)
        tasks = airflow.task_instances(BAKE_DAG_ID, run_id)

    for target in targets:
        promoted = _promoted(sandbox, target, run_id)
        assert len(promoted) == 1, f"{target.label}: expected one new stable image, got {promoted}"
        assert _live_builders(sandbox, target.region, run_id) == [], target.label
    builds = [t for t in tasks if t["task_id"].endswith("packer_build")]
    assert sorted(t["rendered_map_index"] for t in builds) == sorted(t.label for t in targets)

    plain = _plain_packer_builds(sandbox, tmp_path / "plain-packer", monkeypatch)
    phases = _phases(tasks)
    with capsys.disabled():  # shown by `make test` too, not only under -s
        print(
            f"\nweekly bake of the sandbox catalog ({len(targets)} targets) under the"
            f" scheduler (CeleryExecutor): {scheduled:.0f} s; same bakes back to back with"
            f" plain packer build: {plain:.0f} s; ratio {scheduled / plain:.2f}"
            f"\n  per task, first start to last end: {phases}"
        )


def _spans(tasks: list[dict[str, Any]], suffix: str) -> list[tuple[datetime, datetime]]:
    """(start, end) of every try of the tasks whose id ends in `suffix`, by start."""
    return sorted(
        (datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]))
        for t in tasks
        if t["task_id"].endswith(suffix) and t["start_date"] and t["end_date"]
    )


def test_bakes_past_the_parallel_limit_wait_for_a_free_slot(
    sandbox: Sandbox, metadata_db: str, broker_db: int, tmp_path: Path
) -> None:
    """BAKERY_MAX_PARALLEL_BAKES=1: the catalog's images in one region bake one after the
    other, although the worker has slots for all of them."""
    with production_airflow(
        sandbox,
        tmp_path / "airflow",
        database=metadata_db,
        redis_db=broker_db,
        BAKERY_TASK_RETRIES="0",
        BAKERY_MAX_PARALLEL_BAKES="1",
    ) as airflow:
        airflow.start_ready(BAKE_DAG_ID)
        conf = {"regions": ["us-east-1"], "force": True, "skip_promote": True}
        run_id = airflow.trigger(BAKE_DAG_ID, conf)["dag_run_id"]
        airflow.wait_for_run(BAKE_DAG_ID, run_id, timeout=RUN_TIMEOUT)
        tasks = airflow.task_instances(BAKE_DAG_ID, run_id)

    builds = _spans(tasks, "packer_build")
    images = {t.image for t in _catalog_targets() if t.region == "us-east-1"}
    assert len(builds) == len(images) >= 2, tasks
    overlapping = [(a, b) for a, b in itertools.pairwise(builds) if b[0] < a[1]]
    assert overlapping == [], f"bakes ran at the same time: {overlapping}"


def _wait_for_builder(airflow: ProductionAirflow, sandbox: Sandbox, run_id: str) -> str:
    """A running builder instance of the run, once Packer is provisioning it over SSH."""

    def provisioning() -> str | None:
        for instance in _live_builders(sandbox, "us-east-1", run_id):
            console = sandbox.config.instances_dir / instance / "console.log"
            if console.exists() and "Accepted publickey" in console.read_text(errors="replace"):
                return instance
        return None

    return airflow.wait_for("a builder instance being provisioned", provisioning, 300)


def _packer_build(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return next(t for t in tasks if t["task_id"].endswith("packer_build"))


def _ran_tasks(log: Path) -> int:
    return log.read_text(errors="replace").count("] succeeded in ")


def test_a_worker_stopped_mid_bake_finishes_the_bake_before_it_exits(
    sandbox: Sandbox, metadata_db: str, broker_db: int, tmp_path: Path
) -> None:
    """SIGTERM to the worker's process group leader (what `docker compose stop` and a
    rolling restart send) is Celery's warm shutdown: the bake in progress runs to the end on
    that worker, which then exits; the rest of the run goes to the new worker."""
    with production_airflow(
        sandbox,
        tmp_path / "airflow",
        database=metadata_db,
        redis_db=broker_db,
        BAKERY_TASK_RETRIES="2",
    ) as airflow:
        first = airflow.start_ready(BAKE_DAG_ID)
        conf = {"images": ["web"], "regions": ["us-east-1"], "force": True}
        run_id = airflow.trigger(BAKE_DAG_ID, conf)["dag_run_id"]
        _wait_for_builder(airflow, sandbox, run_id)

        first.retired = True
        stopped_at = datetime.now(UTC)
        os.kill(first.pid, signal.SIGTERM)  # the worker's process group leader
        second = airflow.start_worker("worker-2")
        airflow.wait_for_worker(second)
        airflow.wait_for_run(BAKE_DAG_ID, run_id, timeout=RUN_TIMEOUT)
        build = _packer_build(airflow.task_instances(BAKE_DAG_ID, run_id))
        first_exit = first.process.wait(timeout=120)

    assert build["state"] == "success" and build["try_number"] == 1, build
    assert datetime.fromisoformat(build["end_date"]) > stopped_at, (
        f"the bake ended before the worker was stopped at {stopped_at}: nothing was"
        f" interrupted ({build})"
    )
    assert first_exit == 0, f"the stopped worker exited {first_exit}"
    assert _ran_tasks(second.log) > 0, "the new worker ran none of the run's later tasks"
    assert _live_builders(sandbox, "us-east-1", run_id) == []
    assert len(_promoted(sandbox, WEB_US_EAST, run_id)) == 1


@pytest.mark.parametrize(
    "grace_seconds",
    [
        pytest.param(None, id="killed-outright"),
        pytest.param(1.0, id="stopped-with-a-grace-period-shorter-than-the-bake"),
    ],
)
def test_a_worker_killed_mid_bake_gets_the_bake_retried_to_success(
    sandbox: Sandbox, metadata_db: str, broker_db: int, tmp_path: Path, grace_seconds: float | None
) -> None:
    """The worker dies mid-bake: at once (SIGKILL of all its processes: the OOM killer, a
    lost host), or SIGTERM and then SIGKILL once a grace period shorter than the bake is
    over (`docker compose stop -t 1`, a pod's terminationGracePeriodSeconds). Packer cancels
    on PDEATHSIG and removes its builder; the scheduler notices the task's missing heartbeat
    and retries it on the new worker, which bakes it to success."""
    with production_airflow(
        sandbox,
        tmp_path / "airflow",
        database=metadata_db,
        redis_db=broker_db,
        local_settings=SHORT_RETRY_POLICY,
        BAKERY_TASK_RETRIES="2",
        # 300 s by default; the supervisor heartbeats every 5 s.
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="30",
    ) as airflow:
        first = airflow.start_ready(BAKE_DAG_ID)
        conf = {"images": ["web"], "regions": ["us-east-1"], "force": True}
        run_id = airflow.trigger(BAKE_DAG_ID, conf)["dag_run_id"]
        builder = _wait_for_builder(airflow, sandbox, run_id)

        first.retired = True
        if grace_seconds is not None:
            os.kill(first.pid, signal.SIGTERM)  # Celery's warm shutdown begins
            time.sleep(grace_seconds)
        airflow.kill(first)
        second = airflow.start_worker("worker-2")
        airflow.wait_for_worker(second)
        airflow.wait_for_run(BAKE_DAG_ID, run_id, timeout=RUN_TIMEOUT)
        build = _packer_build(airflow.task_instances(BAKE_DAG_ID, run_id))

    assert build["state"] == "success" and build["try_number"] >= 2, build
    assert builder not in _live_builders(sandbox, "us-east-1", run_id)
    assert _live_builders(sandbox, "us-east-1", run_id) == []
    assert len(_promoted(sandbox, WEB_US_EAST, run_id)) == 1
