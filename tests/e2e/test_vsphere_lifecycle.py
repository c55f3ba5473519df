"""vSphere through the bake DAG in the sandbox: real Packer (vsphere-clone) against vcsim
provisions a stand-in guest over SSH and converts it into a template named for the bake;
a smoke VM cloned from that template serves the page; the template is promoted, the one
it supersedes pruned on the next run, and the audit lists the current one as FRESH. An
image whose provisioner forgets nginx bakes fine, fails its smoke test and is not
promoted. No smoke VM is left behind."""

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

from bakery.catalog import VsphereTarget
from bakery.clouds.vsphere import TAG_CLONED_FROM, VsphereAdapter
from bakery.constants import TAG_CHANNEL, TAG_ROLE, TAG_SMOKE, TAG_SUPERSEDED_AT
from sandbox.config import VCSIM_PASSWORD
from tests.e2e.sandbox_support import REPO_ROOT, Sandbox, airflow_env, dags_test

VSPHERE_TEMPLATE = REPO_ROOT / "include" / "packer" / "vsphere-clone.pkr.hcl"
DATACENTER = "DC0"
TARGET = {
    "datacenters": [DATACENTER],
    "source_template": "debian-12-base",  # seeded by the sandbox (sandbox/vsphere.py)
    "cluster": "DC0_C0",
    "datastore": "LocalDS_0",
    "connection_id": "vsphere_bakery",
    "template": str(VSPHERE_TEMPLATE),
}
CHECKS = [
    {"name": "homepage", "http": {"port": 80, "expect_body": "Baked with Packer"}},
    {"name": "nginx running", "service": "nginx"},
]


@pytest.fixture
def vsphere(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[VsphereAdapter]:
    """An adapter over the whole datacenter (no catalog image), to inspect the results."""
    monkeypatch.setenv("AIRFLOW_CONN_VSPHERE_BAKERY", sandbox.env["AIRFLOW_CONN_VSPHERE_BAKERY"])
    adapter = VsphereAdapter(target=VsphereTarget.model_validate(TARGET), location=DATACENTER)
    yield adapter
    adapter.close()


def _image(tmp_path: Path, name: str, script: str) -> dict[str, Any]:
    script_path = tmp_path / f"{name}.sh"
    script_path.write_text(script)
    return {
        "name": name,
        "template": str(VSPHERE_TEMPLATE),
        "variables": {"provision_script": str(script_path)},
        # The real one: the builder's key, host keys and cloud-init state go, so each
        # clone's cloud-init runs afresh with its own instance id and key.
        "cleanup_script": str(REPO_ROOT / "include" / "scripts" / "cleanup.sh"),
        "targets": {"vsphere": TARGET},
        "smoke": {"checks": CHECKS, "settle_seconds": 5, "timeout_seconds": 180},
        "retention": {"keep_promoted": 1, "keep_younger_than_days": 0},
    }


def _smoke_vms(vsphere: VsphereAdapter, *images: str) -> list[str]:
    """Smoke VMs of `images` still in vCenter (the sandbox outlives a test run)."""
    rows = vsphere.hook.vm_properties(vsphere._datacenter(), ("name", "customValue"))
    found = []
    for row in rows:
        values = vsphere.hook.custom_values(row.get("customValue") or [])
        if values.get(TAG_ROLE) == "smoke" and values.get("bakery:image") in images:
            found.append(row["name"])
    return found


def test_vsphere_templates_are_baked_smoke_tested_promoted_pruned_and_audited(
    sandbox: Sandbox, airflow_home: Path, tmp_path: Path, vsphere: VsphereAdapter
) -> None:
    run = uuid.uuid4().hex[:6]
    good, forgetful = f"vsweb-{run}", f"vsforgetful-{run}"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "defaults": {"owners": ["test-team"]},
                "images": [
                    _image(tmp_path, good, (REPO_ROOT / "include/scripts/web.sh").read_text()),
                    # Writes the page but forgets nginx: bakes fine, fails its smoke test.
                    _image(
                        tmp_path,
                        forgetful,
                        "#!/bin/sh\nset -eu\nmkdir -p /var/www/html\n"
                        "echo 'Baked with Packer' > /var/www/html/index.html\n",
                    ),
                ],
            }
        )
    )
    env = airflow_env(sandbox, airflow_home, BAKERY_CATALOG=str(catalog))

    first = dags_test(env, "golden_image_bake", {"clouds": ["vsphere"]})

    output = first.stdout + first.stderr
    assert "vsphere-clone.golden: Convert VM into template" in output, output[-5000:]
    assert "check 'homepage' (http) expected" in output, output[-5000:]
    assert VCSIM_PASSWORD not in output  # the vCenter password never reaches a log
    [good_a] = vsphere.list_managed_images(good)
    assert good_a.name.startswith(f"bakery-{good}-")
    assert good_a.tags[TAG_SMOKE] == "passed", output[-5000:]
    assert good_a.tags[TAG_CHANNEL] == "stable"
    assert good_a.tags["bakery:source-image"] == vsphere.source_image_id()
    [forgot] = vsphere.list_managed_images(forgetful)
    assert forgot.tags[TAG_SMOKE] == "failed"
    assert TAG_CHANNEL not in forgot.tags
    assert _smoke_vms(vsphere, good, forgetful) == []
    assert good_a.image_id not in vsphere.images_in_use()

    second = dags_test(env, "golden_image_bake", {"images": [good]})

    output = second.stdout + second.stderr
    assert second.returncode == 0 and "state=success" in output, output[-5000:]
    [good_b] = vsphere.list_managed_images(good)  # good_a was superseded, then pruned
    assert good_b.image_id != good_a.image_id and good_b.name != good_a.name
    assert good_b.tags[TAG_CHANNEL] == "stable" and TAG_SUPERSEDED_AT not in good_b.tags
    assert f"{good_a.image_id} superseded" in output
    assert not vsphere.hook.vm_exists(good_a.image_id)
    assert _smoke_vms(vsphere, good, forgetful) == []
    assert all(TAG_CLONED_FROM not in m.tags for m in vsphere.list_managed_images(good))

    audit = subprocess.run(
        [sys.executable, "-m", "bakery.audit", "--json"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr[-3000:]
    rows = {(r["image"], r["image_id"]): r for r in json.loads(audit.stdout)["rows"]}
    row = rows[(good, good_b.image_id)]
    assert (row["cloud"], row["region"], row["status"], row["current"], row["age_days"]) == (
        "vsphere",
        DATACENTER,
        "FRESH",
        True,
        0,
    )
    assert row["name"] == good_b.name
    text = subprocess.run(
        [sys.executable, "-m", "bakery.audit"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert f"[OK] FRESH: '{good_b.name}' is 0 days old. (vsphere/{DATACENTER})" in text.stdout
