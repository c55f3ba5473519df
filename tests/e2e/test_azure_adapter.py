"""The Azure adapter through the real azure-mgmt-compute client, over HTTPS, against the
sandbox's ARM server: authentication from the Airflow connection, versions, tags,
promotion, in-use detection, deletion, smoke VMs and their NIC/IP/disk, throttling and
failed long-running operations."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from bakery.catalog import Image
from bakery.clouds.azure_gallery import AzureAdapter, AzureOperationError
from tests.e2e.azure_support import REPO_ROOT, ArmSandbox, arm_sandbox

LOCATION = "westeurope"


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmSandbox]:
    with arm_sandbox(tmp_path_factory.mktemp("arm") / "state") as server:
        yield server


@pytest.fixture
def adapter(arm: ArmSandbox, monkeypatch: pytest.MonkeyPatch, request: Any) -> AzureAdapter:
    arm.reset()
    monkeypatch.setenv("AIRFLOW_CONN_AZURE_BAKERY", arm.connection())
    name = "img-" + request.node.name.removeprefix("test_").replace("_", "-")[:40]
    image = Image.model_validate(
        {
            "name": name,
            "owners": ["test"],
            "template": "packer/aws-linux.pkr.hcl",
            "targets": {
                "azure": {
                    "locations": [LOCATION],
                    "resource_group": arm.endpoint["resource_group"],
                    "gallery": "bakery_gallery",
                    "subnet_id": arm.endpoint["subnet"],
                    "replica_regions": ["northeurope"],
                    "replica_count": 2,
                    "ssh_interface": "public_ip",
                    "source": {"image_id": arm.endpoint["base_image"]},
                }
            },
        }
    )
    assert image.targets.azure is not None
    adapter = AzureAdapter(image=image, target=image.targets.azure, location=LOCATION)
    adapter.client.gallery_images.begin_create_or_update(
        adapter.group,
        "bakery_gallery",
        name,
        {
            "location": LOCATION,
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "identifier": {"publisher": "bakery", "offer": name, "sku": "1"},
            },
        },
    ).result()
    return adapter


def wait(adapter: AzureAdapter, timeout: float = 20) -> list[str]:
    """Poll every started operation to its end, as CloudOperationsTrigger does; the
    failures' messages."""
    failures = []
    for url in adapter.started_operations:
        deadline = time.monotonic() + timeout
        while (state := adapter.operation_state(url)).status == "InProgress":
            assert time.monotonic() < deadline, f"{url} still running"
            time.sleep(state.retry_after or 0.2)
        if state.status != "Succeeded":
            failures.append(state.error or state.status)
    adapter.started_operations.clear()
    return failures


def register(adapter: AzureAdapter, version: str, bake: str) -> str:
    image_id = adapter.register_version(
        source_image_id=adapter.target.source.image_id or "",
        version=version,
        tags={"bakery:managed": "true", "bakery:image": adapter.image.name, "bakery:bake-id": bake},
    )
    assert wait(adapter) == []
    return image_id


def test_versions_are_listed_with_dates_tags_and_replicas(
    adapter: AzureAdapter, arm: ArmSandbox
) -> None:
    first = register(adapter, "1.0.0", "bk-a")
    published = {"publishedDate": "2026-01-02T03:04:05Z"}
    arm.patch(first, {"properties": {"publishingProfile": published}})
    second = register(adapter, "1.0.1", "bk-b")

    listed = adapter.list_managed_images()

    assert [item.image_id for item in listed] == [first, second]  # oldest first
    assert listed[0].created.isoformat() == "2026-01-02T03:04:05+00:00"
    assert listed[1].tags["bakery:bake-id"] == "bk-b"
    assert listed[1].location == LOCATION
    assert adapter.find_baked_image("bk-b") == listed[1]
    assert adapter.find_baked_image("bk-nope") is None
    version = adapter.client.gallery_image_versions.get(
        adapter.group, "bakery_gallery", adapter.definition, "1.0.1"
    )
    regions = version["properties"]["publishingProfile"]["targetRegions"]
    assert [(r["name"], r["regionalReplicaCount"]) for r in regions] == [
        ("westeurope", 2),
        ("northeurope", 2),
    ]
    assert version["properties"]["publishingProfile"]["excludeFromLatest"] is True


def test_promotion_makes_the_version_latest_and_ends_the_superseded_one(
    adapter: AzureAdapter,
) -> None:
    old, new = register(adapter, "1.0.0", "bk-old"), register(adapter, "1.0.1", "bk-new")
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert adapter.promote_version(old, "stable", now=now).changed
    assert wait(adapter) == []

    promotion = adapter.promote_version(new, "stable", now=now)
    assert wait(adapter) == []

    assert promotion.superseded == (old,)
    by_id = {v["id"]: v for v in adapter._versions()}
    assert by_id[new]["tags"]["bakery:channel"] == "stable"
    assert "bakery:channel" not in by_id[old]["tags"]
    assert by_id[old]["tags"]["bakery:superseded-at"] == "2026-11-26T08:00:00Z"
    assert by_id[old]["properties"]["publishingProfile"]["endOfLifeDate"].startswith("2026-12-26")
    assert by_id[old]["properties"]["publishingProfile"]["excludeFromLatest"] is True
    assert by_id[new]["properties"]["publishingProfile"]["excludeFromLatest"] is False
    # Promoting the current version again changes nothing.
    assert not adapter.promote_version(new, "stable", now=now).changed
    assert adapter.started_operations == []


def test_in_use_finds_vms_and_scale_sets_then_delete_removes_version_and_image(
    adapter: AzureAdapter, arm: ArmSandbox
) -> None:
    used, latest, spare = (register(adapter, f"1.0.{n}", f"bk-{n}") for n in range(3))
    adapter.promote_version(latest, "stable", now=datetime.now(UTC))
    assert wait(adapter) == []
    vm = adapter.launch_smoke_instance(
        used, name="app-1", public_key="ssh-ed25519 AAAA test", user_data=None, tags={}
    )
    assert wait(adapter) == []
    definition = used.rsplit("/versions/", 1)[0]
    adapter.client.virtual_machine_scale_sets.begin_create_or_update(
        adapter.group,
        "workers",
        {
            "location": LOCATION,
            "properties": {
                "virtualMachineProfile": {"storageProfile": {"imageReference": {"id": definition}}}
            },
        },
    ).result()

    in_use = adapter.images_in_use()

    assert in_use[used] == "virtual machine app-1"
    assert in_use[latest] == "scale set workers (as the definition's latest)"
    assert spare not in in_use
    # Azure refuses to delete a version a VM runs from (409), with its error body.
    with pytest.raises(HttpResponseError, match="OperationNotAllowed"):
        adapter.delete_image(used)
    adapter.destroy_smoke_instance(vm)
    assert wait(adapter) == []
    deleted = adapter.delete_image(spare)
    assert wait(adapter) == []
    assert deleted == [spare]  # the base image is not bakery's: it stays
    assert spare not in [item.image_id for item in adapter.list_managed_images()]
    assert adapter.client.images.get(adapter.group, "debian-12-base")["name"] == "debian-12-base"


def test_smoke_vm_reports_its_address_and_takes_nic_ip_and_disk_with_it(
    adapter: AzureAdapter, arm: ArmSandbox
) -> None:
    version = register(adapter, "2.0.0", "bk-smoke")
    vm_id = adapter.launch_smoke_instance(
        version,
        name="bakery-smoke-bk-smoke-1",
        public_key="ssh-ed25519 AAAA test",
        user_data="#!/bin/sh\necho hi\n",
        tags={"bakery:role": "smoke"},
    )
    assert adapter.smoke_instance_state(vm_id)[0] == "pending"
    assert wait(adapter) == []

    state, endpoint = adapter.smoke_instance_state(vm_id)

    assert state == "running" and endpoint is not None
    assert endpoint.host.startswith("127.") and endpoint.ssh_port == 22
    vm = adapter.client.virtual_machines.get(adapter.group, "bakery-smoke-bk-smoke-1")
    owned = [
        vm["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"],
        vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"],
        f"{vm_id.rsplit('/providers/', 1)[0]}/providers/Microsoft.Network/publicIPAddresses/"
        "bakery-smoke-bk-smoke-1-ip",
    ]
    assert all(adapter._get_network(resource) for resource in owned)

    adapter.destroy_smoke_instance(vm_id)
    assert wait(adapter) == []
    adapter.destroy_smoke_instance(vm_id)  # idempotent
    assert adapter.started_operations == []

    assert adapter.smoke_instance_state(vm_id) == ("failed", None)
    for resource in owned:
        with pytest.raises(HttpResponseError, match="ResourceNotFound"):
            adapter._get_network(resource)


def test_throttled_calls_are_retried_after_retry_after(
    adapter: AzureAdapter, arm: ArmSandbox
) -> None:
    register(adapter, "3.0.0", "bk-throttle")
    arm.reset()
    arm.inject(method="GET", path_contains=f"/images/{adapter.definition}/versions",
               kind="throttle", retry_after=1, times=2)  # fmt: skip
    started = time.monotonic()

    listed = adapter.list_managed_images()

    assert [item.tags["bakery:bake-id"] for item in listed] == ["bk-throttle"]
    statuses = [r["status"] for r in arm.requests() if r["path"].endswith("/versions")]
    assert statuses == [429, 429, 200]
    assert time.monotonic() - started >= 2  # Retry-After: 1, twice


def test_a_failed_long_running_operation_is_reported_with_azures_error(
    adapter: AzureAdapter, arm: ArmSandbox
) -> None:
    version = register(adapter, "4.0.0", "bk-fail")
    arm.inject(method="PUT", path_contains="/virtualMachines/doomed", kind="fail_operation",
               code="AllocationFailed", message="Allocation failed. No capacity.")  # fmt: skip
    vm_id = adapter.launch_smoke_instance(
        version, name="doomed", public_key="ssh-ed25519 AAAA test", user_data=None, tags={}
    )

    assert wait(adapter) == ["AllocationFailed: Allocation failed. No capacity."]
    assert adapter.smoke_instance_state(vm_id) == ("failed", None)
    # The SDK's own poller sees the same failure.
    arm.inject(method="PUT", path_contains="/versions/4.0.1", kind="fail_operation",
               code="GalleryImageVersionFailed", message="replication failed")  # fmt: skip
    poller = adapter.client.gallery_image_versions.begin_create_or_update(
        adapter.group, "bakery_gallery", adapter.definition, "4.0.1",
        {"location": LOCATION,
         "properties": {"storageProfile": {"source": {"id": adapter.target.source.image_id}}}},
        polling_interval=0.1,
    )  # fmt: skip
    with pytest.raises(HttpResponseError, match="replication failed"):
        poller.result()
    adapter.destroy_smoke_instance(vm_id)
    assert wait(adapter) == []
    assert AzureOperationError  # raised by the operators on such a failure


def test_a_wrong_client_secret_is_refused_by_the_token_endpoint(
    arm: ArmSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    from bakery.hooks.azure_compute import BakeryAzureComputeHook

    connection = json.loads(arm.connection())
    connection["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_AZURE_WRONG", json.dumps(connection))
    client = BakeryAzureComputeHook(azure_conn_id="azure_wrong").get_conn()
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        list(client.virtual_machines.list_all())


@pytest.mark.skipif(shutil.which("packer") is None, reason="PACKER MISSING: apt-get install packer")
def test_packer_inputs_validate_against_the_azure_template(
    adapter: AzureAdapter, tmp_path: Path
) -> None:
    register(adapter, "2026.1126.1", "bk-taken")
    inputs = adapter.packer_inputs(
        image=adapter.image.model_copy(
            update={"variables": {"provision_script": "scripts/web.sh"}}
        ),
        location=LOCATION,
        bake_id="bk-1",
        artifact_name="bakery-web-20261126-000001-12345678",
        tags={"bakery:managed": "true", "bakery:bake-id": "bk-1"},
        work_dir=tmp_path,
    )
    variables = dict(inputs.variables)
    secret = inputs.env["ARM_CLIENT_SECRET"]

    assert inputs.template == REPO_ROOT / "include" / "packer" / "azure-linux.pkr.hcl"
    assert inputs.secrets == [secret]
    assert secret not in json.dumps(variables)  # credentials only in the environment
    assert variables["source_image_name"] == "debian-12-base"
    assert variables["replication_regions"] == ["westeurope", "northeurope"]
    assert variables["tags"]["bakery:location"] == LOCATION
    assert variables["provision_script"] == str(REPO_ROOT / "include" / "scripts" / "web.sh")
    assert re.fullmatch(r"\d{4}\.\d{1,4}\.\d{1,6}", variables["image_version"])
    var_file = tmp_path / "vars.json"
    var_file.write_text(json.dumps(variables))
    # A dead proxy: validate must not reach Azure, and nothing may leave the machine.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1",
           "HTTPS_PROXY": "http://127.0.0.1:1", "HTTP_PROXY": "http://127.0.0.1:1",
           **inputs.env}  # fmt: skip
    validate = [
        "packer", "validate", f"-var-file={var_file}", str(inputs.template)
    ]  # fmt: skip
    ok = subprocess.run(validate, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # Both a Marketplace and a managed source: Packer's own validation refuses it.
    variables |= {"source_publisher": "Debian", "source_offer": "debian-12", "source_sku": "12"}
    var_file.write_text(json.dumps(variables))
    both = subprocess.run(validate, env=env, capture_output=True, text=True, timeout=120)
    assert both.returncode == 1 and "Specify either a VHD" in both.stdout + both.stderr


@pytest.mark.skipif(shutil.which("packer") is None, reason="PACKER MISSING: apt-get install packer")
def test_packer_1_6_azure_arm_cannot_target_a_custom_arm_endpoint(tmp_path: Path) -> None:
    """Why the sandbox registers versions instead of baking them with Packer: Packer 1.6.6's
    azure-arm knows only the Public, China, German and USGovernment clouds (no
    AzureStackCloud environment file, no metadata_host)."""
    template = tmp_path / "probe.pkr.hcl"
    template.write_text(
        'source "azure-arm" "probe" {\n  cloud_environment_name = "AzureStackCloud"\n'
        '  location = "westeurope"\n  os_type = "Linux"\n  image_publisher = "Debian"\n'
        '  image_offer = "debian-12"\n  image_sku = "12"\n  managed_image_name = "m"\n'
        '  managed_image_resource_group_name = "rg"\n}\n'
        'build { sources = ["source.azure-arm.probe"] }\n'
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1",
           "HTTPS_PROXY": "http://127.0.0.1:1",
           "AZURE_ENVIRONMENT_FILEPATH": str(tmp_path / "env.json")}  # fmt: skip
    version = subprocess.run(["packer", "version"], capture_output=True, text=True, env=env)
    if not version.stdout.startswith("Packer v1.6."):
        pytest.skip(f"this records Packer 1.6's limits; found {version.stdout.strip()}")
    result = subprocess.run(
        ["packer", "validate", str(template)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "There is no cloud environment matching the name 'AzureStackCloud'" in (
        result.stdout + result.stderr
    )


def test_the_operations_trigger_reports_success_and_azures_failure(
    adapter: AzureAdapter, arm: ArmSandbox, tmp_path: Path
) -> None:
    import asyncio

    import yaml

    from bakery.triggers.cloud import CloudOperationsTrigger

    catalog = tmp_path / "catalog.yaml"
    entry = adapter.image.model_dump(mode="json", exclude_defaults=True)
    entry["template"] = str(REPO_ROOT / "include" / "packer" / "aws-linux.pkr.hcl")
    entry["targets"]["azure"]["template"] = str(REPO_ROOT / "include/packer/azure-linux.pkr.hcl")
    entry["cleanup_script"] = str(REPO_ROOT / "include/scripts/cleanup.sh")
    catalog.write_text(yaml.safe_dump({"images": [entry]}))
    version = register(adapter, "5.0.0", "bk-trigger")
    arm.inject(method="PATCH", path_contains="/versions/5.0.0", kind="fail_operation",
               code="ReplicationFailed", message="northeurope: quota exceeded")  # fmt: skip
    adapter.set_tags(version, {"bakery:smoke": "passed"})  # this one fails
    adapter.set_tags(version, {"bakery:smoke": "passed"})  # this one succeeds

    async def first_event() -> dict[str, Any]:
        trigger = CloudOperationsTrigger(
            catalog_path=str(catalog),
            image=adapter.image.name,
            cloud="azure",
            location=LOCATION,
            operations=list(adapter.started_operations),
            result={"image_id": version},
            poll_interval=0.1,
        )
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first_event())

    assert event["status"] == "failed"
    assert event["result"] == {"image_id": version}
    [failure] = event["failures"]
    assert failure.endswith("Failed ReplicationFailed: northeurope: quota exceeded")


def test_reaping_deletes_only_old_smoke_vms_of_the_image(
    adapter: AzureAdapter, arm: ArmSandbox
) -> None:
    version = register(adapter, "6.0.0", "bk-reap")
    smoke = {"bakery:managed": "true", "bakery:image": adapter.image.name, "bakery:role": "smoke"}
    old, young, other = (
        adapter.launch_smoke_instance(
            version, name=name, public_key="ssh-ed25519 AAAA t", user_data=None, tags=tags
        )
        for name, tags in (
            ("reap-old", smoke),
            ("reap-young", smoke),
            ("reap-other", {**smoke, "bakery:image": "someone-else"}),
        )
    )
    assert wait(adapter) == []
    for vm in (old, other):
        arm.patch(vm, {"properties": {"timeCreated": "2026-01-01T00:00:00Z"}})

    reaped = adapter.reap_orphans(older_than=datetime.now(UTC) - timedelta(hours=2))

    assert reaped == [old]
    assert wait(adapter) == []
    assert adapter.smoke_instance_state(old) == ("failed", None)
    assert adapter.smoke_instance_state(young)[0] == "running"
    assert adapter.smoke_instance_state(other)[0] == "running"
    for vm in (young, other):
        adapter.destroy_smoke_instance(vm)
    assert wait(adapter) == []
