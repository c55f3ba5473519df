"""Killing a vSphere bake mid-provisioning leaves no VM or template behind: Packer's
vsphere-clone destroys its clone when cancelled the way the runner cancels it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml

from bakery.catalog import VsphereTarget
from bakery.clouds.vsphere import VsphereAdapter
from bakery.operators.packer import PackerBuildOperator
from bakery.packer import PackerCancelledError
from tests.e2e.sandbox_support import REPO_ROOT, Sandbox, bake_in_background
from tests.e2e.test_vsphere_lifecycle import DATACENTER, TARGET

SLOW_SCRIPT = "#!/bin/sh\necho provisioning-started\nsleep 300\n"


def _vms_named(adapter: VsphereAdapter, prefix: str) -> dict[str, str]:
    rows = adapter.hook.vm_properties(adapter._datacenter(), ("name",))
    return {row["moref"]: row["name"] for row in rows if row["name"].startswith(prefix)}


def _wait_for_provisioning(sandbox: Sandbox, adapter: VsphereAdapter, prefix: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for moref in _vms_named(adapter, prefix):
            console = sandbox.config.vsphere_dir / "vms" / moref / "console.log"
            # Packer's SSH session shows in the stand-in's sshd log once provisioning starts.
            if console.exists() and "Accepted publickey" in console.read_text(errors="replace"):
                time.sleep(1)
                return moref
        time.sleep(0.3)
    raise AssertionError("Packer never connected to the vSphere builder VM")


def test_on_kill_during_provisioning_leaves_no_vm(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    name = f"vsslow-{uuid.uuid4().hex[:6]}"
    script = tmp_path / "slow.sh"
    script.write_text(SLOW_SCRIPT)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "defaults": {"owners": ["test-team"]},
                "images": [
                    {
                        "name": name,
                        "template": str(REPO_ROOT / TARGET["template"]),
                        "variables": {"provision_script": str(script)},
                        "cleanup_script": str(REPO_ROOT / "include/scripts/cleanup.sh"),
                        "targets": {"vsphere": TARGET},
                    }
                ],
            }
        )
    )
    adapter = VsphereAdapter(target=VsphereTarget.model_validate(TARGET), location=DATACENTER)
    operator = PackerBuildOperator(
        task_id="packer_build",
        target={"image": name, "cloud": "vsphere", "region": DATACENTER},
        catalog_path=str(catalog),
    )
    bake = bake_in_background(operator, "test__vsphere_on_kill")
    builder = _wait_for_provisioning(sandbox, adapter, f"bakery-{name}-")

    operator.on_kill()
    bake.thread.join(timeout=180)

    assert not bake.thread.is_alive()
    assert bake.outcome and isinstance(bake.outcome[0], PackerCancelledError), bake.outcome
    assert _vms_named(adapter, f"bakery-{name}-") == {}
    assert not adapter.hook.vm_exists(builder)
    adapter.close()
