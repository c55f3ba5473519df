"""What the failure notifier reads from a task's context, and where alerts are routed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bakery.alerts.notifier import failed_task
from bakery.alerts.routing import (
    FALLBACK_CHANNEL,
    broken_after,
    default_channels,
    image_channels,
)
from bakery.catalog import load_catalog
from bakery.packer.errors import PackerError
from tests.unit.test_catalog import image_entry, write_catalog
from tests.unit.test_catalog import template as template  # the fixture

LOG_URL = "http://airflow/dags/d/runs/r/tasks/image_lifecycle.packer_build/mapped/1?try_number=3"


def ti(**fields: object) -> SimpleNamespace:
    defaults = {
        "task_id": "image_lifecycle.packer_build",
        "dag_id": "golden_image_bake",
        "run_id": "scheduled__2026-11-29T22:00:00+00:00",
        "try_number": 3,
        "map_index": 1,
        "rendered_map_index": None,
        "log_url": LOG_URL,
    }
    return SimpleNamespace(**{**defaults, **fields})


def test_a_lifecycle_task_names_its_unit_step_error_try_and_log() -> None:
    error = PackerError(
        "Packer build failed at step 'StepProvision' (exit code 1): exit status: 7\nmore",
        step="StepProvision",
    )
    task = SimpleNamespace(target={"image": "web", "cloud": "aws", "region": "eu-west-1"})
    failed = failed_task({"ti": ti(), "task": task, "exception": error})
    assert (failed.image, failed.cloud, failed.region) == ("web", "aws", "eu-west-1")
    assert failed.step == "packer_build (Packer step StepProvision)"
    assert (
        failed.error == "Packer build failed at step 'StepProvision' (exit code 1): exit status: 7"
    )
    assert (failed.try_number, failed.log_url) == (3, LOG_URL)


def test_the_unit_comes_from_the_bake_result_or_the_readable_map_index() -> None:
    bake = {"image": "api", "cloud": "aws", "region": "us-east-1", "image_id": "ami-1"}
    by_bake = failed_task(
        {"ti": ti(task_id="image_lifecycle.smoke_test"), "task": SimpleNamespace(bake=bake)}
    )
    assert (by_bake.image, by_bake.step) == ("api", "smoke_test")
    by_label = failed_task(
        {"ti": ti(rendered_map_index="db/aws/eu-west-1"), "task": SimpleNamespace()}
    )
    assert (by_label.image, by_label.region) == ("db", "eu-west-1")


def test_a_task_about_no_image_and_without_an_error() -> None:
    failed = failed_task(
        {"ti": ti(task_id="reap_orphans", map_index=-1), "task": SimpleNamespace()}
    )
    assert failed.image is None and failed.label == "golden_image_bake"
    assert "without an error message" in failed.error


@pytest.mark.usefixtures("template")
def test_routing_to_the_images_channels_else_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(
        write_catalog(
            tmp_path,
            {
                "images": [
                    image_entry(
                        "web", alerts={"channels": ["web_hook"], "broken_after_failures": 5}
                    ),
                    image_entry("api"),
                ]
            },
        )
    )
    monkeypatch.setenv("AIRFLOW_VAR_BAKERY_ALERT_CHANNELS", " team_mail , oncall_sns ")
    assert default_channels() == ["team_mail", "oncall_sns"]
    assert image_channels("web", catalog) == ["web_hook"]
    assert image_channels("api", catalog) == ["team_mail", "oncall_sns"]
    assert image_channels("unknown", catalog) == ["team_mail", "oncall_sns"]
    assert image_channels("web", None) == ["team_mail", "oncall_sns"]
    assert (broken_after("web", catalog), broken_after("api", catalog)) == (5, 3)


def test_without_the_variable_the_default_is_the_fallback_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_BAKERY_ALERT_CHANNELS", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_channels() == [FALLBACK_CHANNEL]


@pytest.mark.usefixtures("template")
def test_the_images_credentials_and_secret_inputs_are_redacted_from_its_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from bakery.alerts.notifier import _cloud_secrets

    entry = image_entry(secrets=[{"env": "FEED_TOKEN", "connection": "feed"}])
    entry["targets"]["aws"]["connection_id"] = "aws_web"
    catalog = load_catalog(write_catalog(tmp_path, {"images": [entry]}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEED", json.dumps({"conn_type": "generic", "password": "feed-token-123"})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_WEB",
        json.dumps({"conn_type": "aws", "login": "AKIA", "password": "aws-secret-456"}),
    )
    assert sorted(_cloud_secrets(catalog, "web")) == ["aws-secret-456", "feed-token-123"]
    assert _cloud_secrets(catalog, "unknown") == []
    assert _cloud_secrets(None, "web") == []
