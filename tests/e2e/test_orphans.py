"""Nothing bakery launches outlives its task: the reaper and a killed smoke test."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from bakery.operators.reap import ReapOrphansOperator
from bakery.operators.smoke import SmokeTestOperator
from tests.e2e.sandbox_support import Sandbox, shell_image, write_catalog


def _state(sandbox: Sandbox, instance_id: str) -> str:
    reservations = sandbox.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def _launch(sandbox: Sandbox, tags: dict[str, str]) -> str:
    subnet = sandbox.ec2().describe_subnets(
        Filters=[{"Name": "tag:bakery-build", "Values": ["true"]}]
    )["Subnets"][0]["SubnetId"]
    return sandbox.ec2().run_instances(
        ImageId="ami-0deb12000000000a1",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )["Instances"][0]["InstanceId"]


def test_reaper_removes_only_bakerys_aged_builder_and_smoke_leftovers(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    builder = _launch(sandbox, {"bakery:managed": "true", "bakery:role": "builder"})
    foreign = _launch(sandbox, {"team": "payments"})
    key_name = f"bakery-smoke-{uuid.uuid4().hex[:8]}"
    sandbox.ec2().create_key_pair(KeyName=key_name)

    young = ReapOrphansOperator(task_id="reap", catalog_regions=[("aws_bakery", "us-east-1")])
    assert young.execute({}) == []  # type: ignore[arg-type]

    aged = ReapOrphansOperator(
        task_id="reap", catalog_regions=[("aws_bakery", "us-east-1")], max_age=timedelta(0)
    )
    removed = aged.execute({})  # type: ignore[arg-type]

    assert builder in removed and key_name in removed and foreign not in removed
    assert _state(sandbox, builder) == "terminated"
    assert _state(sandbox, foreign) == "running"
    sandbox.ec2().terminate_instances(InstanceIds=[foreign])


def test_killing_the_deferred_smoke_test_terminates_its_instance(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    name = f"killsmoke-{uuid.uuid4().hex[:6]}"
    image = shell_image(tmp_path, name, "true")
    image["smoke"] = {
        "checks": [{"name": "never", "file": "/nonexistent"}],
        "settle_seconds": 600,
        "timeout_seconds": 900,
    }
    monkeypatch.setenv("BAKERY_CATALOG", str(write_catalog(tmp_path, [image])))
    operator = SmokeTestOperator(
        task_id="smoke_test",
        bake={
            "image": name,
            "cloud": "aws",
            "region": "us-east-1",
            "image_id": "ami-0deb12000000000a1",
            "bake_id": "bk-kill",
        },
    )

    class _TI:
        try_number = 1

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": _TI()})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    instance_id = trigger.instance_id

    async def boot_then_kill() -> None:
        run = asyncio.ensure_future(anext(trigger.run()))
        deadline = time.monotonic() + 60
        while _state(sandbox, instance_id) != "running":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        # What the triggerer does when a user marks the deferred task failed or clears it.
        run.cancel()
        await trigger.on_kill()

    asyncio.run(boot_then_kill())

    assert _state(sandbox, instance_id) in ("shutting-down", "terminated")
    keys = [k["KeyName"] for k in sandbox.ec2().describe_key_pairs()["KeyPairs"]]
    assert trigger.key_name not in keys
