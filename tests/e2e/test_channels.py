"""Promotion and rollback against the sandbox's EC2 and SSM APIs (no Packer needed)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bakery.operators.promote import NotSmokeTestedError, PromoteImageOperator
from bakery.operators.rollback import NothingToRollBackError, RollbackChannelOperator
from tests.e2e.sandbox_support import Sandbox, shell_image, tags_of, write_catalog


class _Events:
    """Collects what PromoteImageOperator emits through `outlet_events`."""

    def __init__(self) -> None:
        self.added: list[tuple[str, dict[str, Any]]] = []

    def __getitem__(self, alias: object) -> _Events:
        return self

    def add(self, asset: Any, extra: dict[str, Any]) -> None:
        self.added.append((asset.uri, extra))


@pytest.fixture
def image_name(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    name = f"chan-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv(
        "BAKERY_CATALOG", str(write_catalog(tmp_path, [shell_image(tmp_path, name, "true")]))
    )
    return name


def _registered(sandbox: Sandbox, image: str, n: int) -> str:
    ec2 = sandbox.ec2()
    image_id = ec2.register_image(Name=f"{image}-{n}", RootDeviceName="/dev/xvda")["ImageId"]
    ec2.create_tags(
        Resources=[image_id],
        Tags=[
            {"Key": k, "Value": v}
            for k, v in {
                "bakery:managed": "true",
                "bakery:image": image,
                "bakery:bake-id": f"bk-{n}",
                "bakery:smoke": "passed",
            }.items()
        ],
    )
    return image_id


def _bake(image: str, image_id: str, n: int, smoke: str = "passed") -> dict[str, str]:
    return {
        "image": image,
        "cloud": "aws",
        "region": "us-east-1",
        "image_id": image_id,
        "bake_id": f"bk-{n}",
        "smoke": smoke,
    }


def _promote(bake: dict[str, str]) -> tuple[dict[str, str], _Events]:
    events = _Events()
    result = PromoteImageOperator(task_id="promote", bake=bake).execute(
        {"outlet_events": events}  # type: ignore[arg-type]
    )
    return result, events


def _parameter(sandbox: Sandbox, image: str) -> str:
    return sandbox.client("ssm").get_parameter(Name=f"/bakery/{image}/stable")["Parameter"]["Value"]


def test_promotion_is_idempotent_and_rollback_returns_to_the_previous_image(
    sandbox: Sandbox, image_name: str
) -> None:
    first, second = _registered(sandbox, image_name, 1), _registered(sandbox, image_name, 2)

    result, events = _promote(_bake(image_name, first, 1))
    assert result["promoted"] == "true"
    assert events.added == [
        (
            f"x-bakery://aws/{image_name}",
            {"image_id": first, "region": "us-east-1", "channel": "stable", "bake_id": "bk-1"},
        )
    ]
    again, events_again = _promote(_bake(image_name, first, 1))
    assert again["promoted"] == "already" and events_again.added == []

    _promote(_bake(image_name, second, 2))
    assert _parameter(sandbox, image_name) == second
    first_tags = tags_of(sandbox.ec2().describe_images(ImageIds=[first])["Images"][0])
    assert "bakery:channel" not in first_tags and "bakery:superseded-at" in first_tags

    rolled = RollbackChannelOperator(
        task_id="rollback", image=image_name, region="us-east-1"
    ).execute({})  # type: ignore[arg-type]

    assert rolled["from"] == second and rolled["to"] == first
    assert _parameter(sandbox, image_name) == first
    second_tags = tags_of(sandbox.ec2().describe_images(ImageIds=[second])["Images"][0])
    assert "bakery:rolled-back-at" in second_tags and "bakery:channel" not in second_tags
    with pytest.raises(NothingToRollBackError):
        RollbackChannelOperator(task_id="rollback", image=image_name, region="us-east-1").execute(
            {}
        )  # type: ignore[arg-type]


def test_promotion_refuses_an_image_without_a_passed_smoke_test(
    sandbox: Sandbox, image_name: str
) -> None:
    image_id = _registered(sandbox, image_name, 3)
    with pytest.raises(NotSmokeTestedError):
        _promote(_bake(image_name, image_id, 3, smoke="failed"))
    assert "bakery:channel" not in tags_of(
        sandbox.ec2().describe_images(ImageIds=[image_id])["Images"][0]
    )


def test_distribution_copies_the_promoted_image_and_promotes_it_in_each_region(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    from bakery.operators.distribute import DistributeImageOperator

    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    name = f"dist-{uuid.uuid4().hex[:6]}"
    image = shell_image(tmp_path, name, "true")
    image["targets"]["aws"]["copy_to_regions"] = ["eu-west-1"]
    monkeypatch.setenv("BAKERY_CATALOG", str(write_catalog(tmp_path, [image])))
    source_id = _registered(sandbox, name, 7)
    bake = _bake(name, source_id, 7)
    _promote(bake)
    operator = DistributeImageOperator(task_id="distribute", bake=bake, poll_interval=0.2)

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})  # type: ignore[arg-type]
    event = asyncio.run(anext(deferred.value.trigger.run()))
    result = operator.execute_complete({}, event.payload)  # type: ignore[arg-type]

    copy_id = result["copies"]["eu-west-1"]
    copy = sandbox.ec2("eu-west-1").describe_images(ImageIds=[copy_id])["Images"][0]
    assert tags_of(copy)["bakery:copied-from"] == f"us-east-1:{source_id}"
    assert tags_of(copy)["bakery:channel"] == "stable"
    ssm = sandbox.client("ssm", "eu-west-1")
    assert ssm.get_parameter(Name=f"/bakery/{name}/stable")["Parameter"]["Value"] == copy_id
