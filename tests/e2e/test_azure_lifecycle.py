"""The Azure lifecycle through the bake DAG in the sandbox: register a version (Packer
1.6.6 cannot reach the sandbox's ARM server, so the catalog says `bake: register-source`),
smoke-test it on a stand-in VM reached by SSH, promote it as the gallery's latest, prune
the superseded one, and audit it; a version failing its smoke test is tagged, not
promoted. Every call goes through the real SDK over HTTPS to the sandbox's ARM server."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.azure_support import ArmSandbox
from tests.e2e.sandbox_support import REPO_ROOT, Sandbox, airflow_env, dags_test

AZURE_TEMPLATE = REPO_ROOT / "include" / "packer" / "azure-linux.pkr.hcl"
LOCATION = "westeurope"


@pytest.fixture(scope="module")
def arm(sandbox: Sandbox) -> ArmSandbox:
    endpoint = sandbox.config.state_dir / "azure" / "endpoint.json"
    return ArmSandbox(json.loads(endpoint.read_text()))


@pytest.fixture
def compute(arm: ArmSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AIRFLOW_CONN_AZURE_BAKERY", arm.connection())
    from bakery.hooks.azure_compute import BakeryAzureComputeHook

    client = BakeryAzureComputeHook(azure_conn_id="azure_bakery").get_conn()
    yield client
    client.close()


def _image(arm: ArmSandbox, name: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "template": str(AZURE_TEMPLATE),
        "cleanup_script": str(REPO_ROOT / "include" / "scripts" / "cleanup.sh"),
        "targets": {
            "azure": {
                "locations": [LOCATION],
                "replica_regions": ["northeurope"],
                "resource_group": arm.endpoint["resource_group"],
                "gallery": "bakery_gallery",
                "subnet_id": arm.endpoint["subnet"],
                "source": {"image_id": arm.endpoint["base_image"]},
                "template": str(AZURE_TEMPLATE),
                "bake": "register-source",
                "ssh_username": "admin",
            }
        },
        "smoke": {"checks": checks, "settle_seconds": 3, "timeout_seconds": 120},
        "retention": {"keep_promoted": 1, "keep_younger_than_days": 0},
    }


def _versions(compute: Any, definition: str) -> dict[str, Any]:
    return {
        version["name"]: version
        for version in compute.gallery_image_versions.list_by_gallery_image(
            "bakery-sandbox", "bakery_gallery", definition
        )
    }


def _leftovers(compute: Any, run: str) -> list[str]:
    """Smoke VMs, and the NICs, public IPs and disks they owned, still around."""
    vms = [vm["name"] for vm in compute.virtual_machines.list_all() if run in vm["name"]]
    owned = []
    for kind in ("Microsoft.Network/networkInterfaces", "Microsoft.Network/publicIPAddresses",
                 "Microsoft.Compute/disks"):  # fmt: skip
        from azure.core.rest import HttpRequest

        response = compute.send_request(
            HttpRequest(
                "GET",
                f"/subscriptions/{compute._config.subscription_id}/providers/{kind}"
                "?api-version=2023-09-01",
            )
        )
        owned += [item["name"] for item in response.json()["value"] if "smoke" in item["name"]]
    return vms + owned


def test_azure_versions_are_registered_smoke_tested_promoted_pruned_and_audited(
    sandbox: Sandbox, airflow_home: Path, tmp_path: Path, arm: ArmSandbox, compute: Any
) -> None:
    run = uuid.uuid4().hex[:6]
    good, bad = f"azgood-{run}", f"azbad-{run}"
    for definition in (good, bad):
        compute.gallery_images.begin_create_or_update(
            "bakery-sandbox", "bakery_gallery", definition,
            {"location": LOCATION, "properties": {
                "osType": "Linux", "osState": "Generalized",
                "identifier": {"publisher": "bakery", "offer": definition, "sku": "12"}}},
        ).result()  # fmt: skip
    catalog = tmp_path / "catalog.yaml"
    passing = [
        {"name": "debian 12", "command": {"run": "cat /etc/debian_version",
                                          "expect_output": "12."}},
        {"name": "ssh config", "file": "/etc/ssh/sshd_config"},
    ]  # fmt: skip
    failing = [{"name": "golden page", "file": "/var/www/html/index.html"}]
    catalog.write_text(
        yaml.safe_dump(
            {
                "defaults": {"owners": ["test-team"]},
                "images": [_image(arm, good, passing), _image(arm, bad, failing)],
            }
        )
    )
    env = airflow_env(sandbox, airflow_home, BAKERY_CATALOG=str(catalog))

    first = dags_test(env, "golden_image_bake", {"clouds": ["azure"]})

    output = first.stdout + first.stderr
    assert "NOT running Packer: the catalog sets bake: register-source" in output, output[-3000:]
    assert "check 'golden page' (file) expected" in output, output[-5000:]
    # The hygiene scan ran on the Azure stand-in too (cloud-init state is the VM's vmId).
    assert "[PASS] hygiene 'image hygiene'" in output, output[-5000:]
    [good_a] = _versions(compute, good).values()
    assert good_a["tags"]["bakery:smoke"] == "passed", output[-5000:]
    assert good_a["tags"]["bakery:channel"] == "stable"
    assert good_a["tags"]["bakery:location"] == LOCATION
    profile = good_a["properties"]["publishingProfile"]
    assert profile["excludeFromLatest"] is False
    assert [r["name"] for r in profile["targetRegions"]] == [LOCATION, "northeurope"]
    [bad_a] = _versions(compute, bad).values()
    assert bad_a["tags"]["bakery:smoke"] == "failed"
    assert "bakery:channel" not in bad_a["tags"]
    assert bad_a["properties"]["publishingProfile"]["excludeFromLatest"] is True
    assert _leftovers(compute, run) == []

    second = dags_test(env, "golden_image_bake", {"images": [good]})

    output = second.stdout + second.stderr
    assert second.returncode == 0 and "state=success" in output, output[-5000:]
    [good_b] = _versions(compute, good).values()  # good_a was superseded, then pruned
    assert good_b["name"] != good_a["name"]
    assert good_b["tags"]["bakery:channel"] == "stable"
    assert f"{good_a['id']} superseded" in output
    assert "failed its smoke test" not in output
    assert _leftovers(compute, run) == []

    audit = subprocess.run(
        [sys.executable, "-m", "bakery.audit", "--json"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr[-3000:]
    rows = {(r["image"], r["image_id"]): r for r in json.loads(audit.stdout)["rows"]}
    row = rows[(good, good_b["id"])]
    assert (row["cloud"], row["region"], row["status"], row["current"]) == (
        "azure",
        LOCATION,
        "FRESH",
        True,
    )
    assert rows[(bad, bad_a["id"])]["status"] == "FRESH"
