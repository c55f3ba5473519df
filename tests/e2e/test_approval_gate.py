"""The approval gate under the real scheduler (the production topology): an image whose
catalog entry sets `approval_required` waits at `approve`, parked as `awaiting_input` with
no worker slot held, until someone answers in the UI or the REST API. Approve promotes
the smoke-tested image; Reject skips promotion and prune and keeps the image unpromoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.providers.standard.operators.hitl import ApprovalOperator

from bakery.constants import BAKE_DAG_ID
from tests.e2e.production_support import ProductionAirflow, production_airflow
from tests.e2e.sandbox_support import Sandbox, shell_image, tags_of, write_catalog

pytestmark = pytest.mark.timeout(1200)
APPROVE_TASK = "image_lifecycle.approve"


def _gated(folder: Path, name: str) -> dict[str, Any]:
    image = shell_image(folder, name, f"#!/bin/sh\necho {name} > /etc/{name}-baked\n")
    return {**image, "approval_required": True}


def _hitl_path(run_id: str, map_index: int) -> str:
    return (
        f"dags/{BAKE_DAG_ID}/dagRuns/{run_id}/taskInstances/{APPROVE_TASK}/{map_index}/hitlDetails"
    )


def _waiting_for_a_human(airflow: ProductionAirflow, run_id: str) -> dict[str, int]:
    """Map index of each image's approve task, once every one of them waits for an answer."""

    def waiting() -> dict[str, int] | None:
        tasks = airflow.task_instances(BAKE_DAG_ID, run_id)
        approvals = [t for t in tasks if t["task_id"] == APPROVE_TASK]
        if len(approvals) < 2 or any(t["state"] != "awaiting_input" for t in approvals):
            return None
        if any(
            airflow.api("GET", _hitl_path(run_id, t["map_index"])).status_code != 200
            for t in approvals
        ):
            return None
        # The group's map index is the same for each of its tasks; the bake's is labelled.
        builds = [t for t in tasks if t["task_id"].endswith("packer_build")]
        return {t["rendered_map_index"].split("/")[0]: t["map_index"] for t in builds}

    return airflow.wait_for("both approvals to wait for an answer", waiting, 600, interval=2)


def _stable_images(sandbox: Sandbox, image: str, run_id: str) -> list[str]:
    return [
        found["ImageId"]
        for found in sandbox.images_tagged("bakery:channel", "stable", "us-east-1")
        if tags_of(found).get("bakery:image") == image
        and tags_of(found).get("bakery:dag-run-id") == run_id
    ]


def test_approve_promotes_and_reject_keeps_the_image_unpromoted(
    sandbox: Sandbox, metadata_db: str, broker_db: int, tmp_path: Path
) -> None:
    catalog = write_catalog(tmp_path, [_gated(tmp_path, "approved"), _gated(tmp_path, "rejected")])
    with production_airflow(
        sandbox,
        tmp_path / "airflow",
        database=metadata_db,
        redis_db=broker_db,
        BAKERY_CATALOG=str(catalog),
        BAKERY_TASK_RETRIES="0",
    ) as airflow:
        airflow.start_ready(BAKE_DAG_ID)
        run_id = airflow.trigger(BAKE_DAG_ID, {"force": True})["dag_run_id"]

        index = _waiting_for_a_human(airflow, run_id)
        detail = airflow.api("GET", _hitl_path(run_id, index["approved"])).json()
        assert detail["subject"].startswith("Promote ami-"), detail
        assert "approved/aws/us-east-1" in detail["subject"], detail
        assert _stable_images(sandbox, "approved", run_id) == []  # nothing before the answer

        for image, answer in (
            ("approved", ApprovalOperator.APPROVE),
            ("rejected", ApprovalOperator.REJECT),
        ):
            response = airflow.api(
                "PATCH", _hitl_path(run_id, index[image]), json={"chosen_options": [answer]}
            )
            assert response.status_code == 200, response.text
        run = airflow.wait_for_run(BAKE_DAG_ID, run_id, timeout=600)
        # Skipped tasks never render their label: key by map index.
        states = {
            (t["task_id"].split(".")[-1], t["map_index"]): t["state"]
            for t in airflow.task_instances(BAKE_DAG_ID, run_id)
        }

    assert run["state"] == "success", states
    assert len(_stable_images(sandbox, "approved", run_id)) == 1
    assert states[("promote", index["approved"])] == "success"
    assert _stable_images(sandbox, "rejected", run_id) == []
    assert states[("promote", index["rejected"])] == "skipped"
    assert states[("prune", index["rejected"])] == "skipped"
    kept = sandbox.images_tagged("bakery:image", "rejected", "us-east-1")
    assert [
        tags_of(i).get("bakery:smoke")
        for i in kept
        if tags_of(i).get("bakery:dag-run-id") == run_id
    ] == ["passed"]
