"""What the end-to-end tests need to drive and inspect the sandbox cloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from sandbox.config import SandboxConfig, load_config

if TYPE_CHECKING:
    from bakery.operators.packer import PackerBuildOperator

REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_TEMPLATE = REPO_ROOT / "include" / "packer" / "aws-linux.pkr.hcl"
CLEANUP_SCRIPT = REPO_ROOT / "include" / "scripts" / "cleanup.sh"


@dataclass(frozen=True)
class Sandbox:
    config: SandboxConfig
    env: Mapping[str, str]

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.config.moto_url,
            region_name=region,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    def ec2(self, region: str = "us-east-1") -> Any:
        return self.client("ec2", region)

    def image_layer(self, image_id: str, timeout: float = 30.0) -> Path:
        """The captured filesystem of an image (its top overlay layer)."""
        ready = self.config.images_dir / image_id / "READY"
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"the sandbox never captured {image_id}")
            time.sleep(0.2)
        return ready.parent / "layer"

    def leftovers(self, region: str = "us-east-1") -> dict[str, list[str]]:
        """Builder resources that must never outlive a bake: live instances, temporary
        security groups and key pairs."""
        ec2 = self.ec2(region)
        live = [
            i["InstanceId"]
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        ]
        groups = [
            g["GroupName"]
            for g in ec2.describe_security_groups()["SecurityGroups"]
            if g["GroupName"].startswith("packer")
        ]
        keys = [
            k["KeyName"]
            for k in ec2.describe_key_pairs()["KeyPairs"]
            if k["KeyName"].startswith("packer")
        ]
        return {"instances": live, "security_groups": groups, "key_pairs": keys}

    def images_tagged(
        self, key: str, value: str, region: str = "us-east-1"
    ) -> list[dict[str, Any]]:
        return self.ec2(region).describe_images(
            Owners=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}]
        )["Images"]

    def snapshots_tagged(
        self, key: str, value: str, region: str = "us-east-1"
    ) -> list[dict[str, Any]]:
        return self.ec2(region).describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}]
        )["Snapshots"]

    def wait_for_instance(
        self, tag_key: str, tag_value: str, region: str = "us-east-1", timeout: float = 60.0
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reservation in self.ec2(region).describe_instances(
                Filters=[
                    {"Name": f"tag:{tag_key}", "Values": [tag_value]},
                    {"Name": "instance-state-name", "Values": ["running"]},
                ]
            )["Reservations"]:
                return reservation["Instances"][0]["InstanceId"]
            time.sleep(0.2)
        raise AssertionError(f"no running instance tagged {tag_key}={tag_value}")


def start_sandbox() -> tuple[Sandbox, bool]:
    """Start the sandbox unless it runs already; returns it and whether we started it."""
    config = load_config()
    was_running = (
        subprocess.run(
            [sys.executable, "-m", "sandbox", "status"], cwd=REPO_ROOT, capture_output=True
        ).returncode
        == 0
    )
    if not was_running:
        subprocess.run([sys.executable, "-m", "sandbox", "up"], cwd=REPO_ROOT, check=True)
    env: dict[str, str] = {}
    for line in config.env_file.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return Sandbox(config=config, env=env), not was_running


def stop_sandbox() -> None:
    subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=REPO_ROOT, check=True)


def write_catalog(folder: Path, images: list[Mapping[str, Any]]) -> Path:
    """A catalog for a test, using the shipped AWS template and the sandbox's settings."""
    import yaml

    defaults = {
        "owners": ["test-team"],
        "cleanup_script": str(CLEANUP_SCRIPT),
        "targets": {
            "aws": {
                "connection_id": "aws_bakery",
                "subnet_tags": {"bakery-build": "true"},
                "source": {"name": "debian-12-amd64-*", "owners": ["136693071363"]},
            }
        },
    }
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump({"defaults": defaults, "images": list(images)}))
    return path


def shell_image(
    folder: Path, name: str, script: str, regions: list[str] | None = None
) -> dict[str, Any]:
    """A catalog image whose provisioner is `script`."""
    script_path = folder / f"{name}.sh"
    script_path.write_text(script)
    return {
        "name": name,
        "template": str(WEB_TEMPLATE),
        "variables": {"provision_script": str(script_path)},
        "targets": {"aws": {"regions": regions or ["us-east-1"]}},
    }


def airflow_env(sandbox: Sandbox, airflow_home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **sandbox.env,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO_ROOT / "plugins"),
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "BAKERY_TASK_RETRIES": "0",
        # `airflow dags test` crashes on a DAG with a deadline (apache/airflow#73428);
        # tests under the real scheduler switch it back on.
        "BAKERY_BAKE_DEADLINE_MINUTES": "off",
        **extra,
    }


def airflow(
    env: Mapping[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "airflow"), *args],
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dags_test(
    env: Mapping[str, str], dag_id: str, conf: Mapping[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    return airflow(env, *args)


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def iter_lines(text: str, needle: str) -> Iterator[str]:
    return (line for line in text.splitlines() if needle in line)


@dataclass
class BackgroundBake:
    """A PackerBuildOperator.execute running in a thread, as in a worker's task process,
    so that a test can kill it midway; `outcome` gets what it raised."""

    thread: threading.Thread
    outcome: list[BaseException]


def bake_in_background(operator: PackerBuildOperator, run_id: str) -> BackgroundBake:
    outcome: list[BaseException] = []

    def bake() -> None:
        try:
            operator.execute({"run_id": run_id})  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 (the test inspects it)
            outcome.append(exc)

    thread = threading.Thread(target=bake)
    thread.start()
    return BackgroundBake(thread=thread, outcome=outcome)
