"""The vSphere adapter against a real vcsim (no mocks): templates, custom attributes,
promotion, smoke clones, in-use and deletion, and what Packer is handed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakery.catalog import Image, VsphereTarget
from bakery.clouds.vsphere import (
    TAG_BAKED_AT,
    TAG_CLONED_FROM,
    VsphereAdapter,
    parse_notes,
    render_notes,
)
from bakery.constants import (
    TAG_BAKE_ID,
    TAG_CHANNEL,
    TAG_IMAGE,
    TAG_MANAGED,
    TAG_PROMOTED_AT,
    TAG_SMOKE,
    TAG_SOURCE_IMAGE,
    TAG_SUPERSEDED_AT,
)
from tests.unit.clouds.conftest import CONN_ID
from tests.vcsim_support import CLUSTER, DATACENTER, DATASTORE, make_template, wait

BASE_TEMPLATE = "bakery-test-base"


@pytest.fixture(scope="module")
def base_template(vcenter: Any) -> Any:
    found = vcenter.searchIndex.FindByInventoryPath(f"{DATACENTER}/vm/{BASE_TEMPLATE}")
    return found or make_template(vcenter, BASE_TEMPLATE)


@pytest.fixture
def adapter(vcsim: Any, base_template: Any) -> Any:
    target = VsphereTarget(
        datacenters=(DATACENTER,),
        source_template=BASE_TEMPLATE,
        cluster=CLUSTER,
        datastore=DATASTORE,
        connection_id=CONN_ID,
    )
    adapter = VsphereAdapter(target=target, location=DATACENTER)
    yield adapter
    adapter.close()


@pytest.fixture
def image_name() -> str:
    return f"img-{uuid.uuid4().hex[:8]}"


def catalog_image(name: str, target: VsphereTarget) -> Image:
    """A catalog image baked for `target`, with the web image's provisioning script."""
    return Image.model_validate(
        {
            "name": name,
            "owners": ["team"],
            "template": "packer/vsphere-clone.pkr.hcl",
            "variables": {"provision_script": "scripts/web.sh"},
            "targets": {"vsphere": target.model_dump()},
        }
    )


def baked(vcenter: Any, image: str, *, baked_at: str, bake: str | None = None) -> str:
    """A template as a bake leaves it: bake-time tags in its notes and its `bakery.tags`
    advanced setting. Returns its moref."""
    tags = {
        TAG_MANAGED: "true",
        TAG_IMAGE: image,
        TAG_BAKE_ID: bake or f"bk-{uuid.uuid4().hex[:16]}",
        TAG_BAKED_AT: baked_at,
    }
    name = f"bakery-{image}-{baked_at.replace(':', '')}-{uuid.uuid4().hex[:4]}"
    return make_template(
        vcenter, name, notes=render_notes(tags), settings={"bakery.tags": json.dumps(tags)}
    )._moId


def test_notes_round_trip() -> None:
    tags = {TAG_IMAGE: "web", TAG_BAKE_ID: "bk-1", TAG_BAKED_AT: "2026-11-01T00:00:00Z"}
    assert parse_notes(render_notes(tags)) == tags
    assert parse_notes("hand-written notes\nowner=me") == {}


def test_lists_only_bakery_templates_of_the_image_oldest_first(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    newer = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z")
    older = baked(vcenter, image_name, baked_at="2026-10-01T22:00:00Z")
    other = baked(vcenter, f"{image_name}-other", baked_at="2026-11-21T22:00:00Z")
    make_template(vcenter, f"unmanaged-{image_name}", notes="a template someone made by hand")
    # Notes alone are for people: a template is bakery's only by its setting/attributes.
    make_template(
        vcenter,
        f"notes-only-{image_name}",
        notes=render_notes({TAG_MANAGED: "true", TAG_IMAGE: image_name}),
    )

    mine = adapter.list_managed_images(image_name)

    assert [m.image_id for m in mine] == [older, newer]
    assert mine[0].created == datetime(2026, 10, 1, 22, tzinfo=UTC)
    assert mine[0].location == DATACENTER
    assert mine[0].tags[TAG_IMAGE] == image_name
    everything = {m.image_id for m in adapter.list_managed_images()}
    assert {older, newer, other} <= everything
    assert all(m.tags[TAG_MANAGED] == "true" for m in adapter.list_managed_images())


def test_an_adapter_for_one_catalog_image_sees_only_its_templates(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    mine = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z")
    baked(vcenter, f"{image_name}-other", baked_at="2026-11-21T22:00:00Z")
    image = catalog_image(image_name, adapter.target)
    scoped = VsphereAdapter(image=image, target=adapter.target, location=DATACENTER)

    assert [m.image_id for m in scoped.list_managed_images()] == [mine]
    name = next(m.name for m in scoped.list_managed_images())
    assert scoped.published_image_id({"vm_name": name}, name) == mine
    scoped.close()


def test_find_baked_image_by_bake_id(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    wanted = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z", bake="bk-wanted")
    baked(vcenter, image_name, baked_at="2026-11-21T22:00:00Z")

    found = adapter.find_baked_image("bk-wanted")

    assert found is not None and found.image_id == wanted
    assert adapter.find_baked_image("bk-never-baked") is None


def test_custom_attributes_add_to_and_override_bake_time_tags(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    template = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z")

    adapter.set_tags(template, {TAG_SMOKE: "passed", TAG_IMAGE: "renamed"})
    tags = adapter.list_managed_images("renamed")[0].tags
    assert tags[TAG_SMOKE] == "passed"

    adapter.remove_tags(template, [TAG_SMOKE, TAG_IMAGE])
    (found,) = [m for m in adapter.list_managed_images() if m.image_id == template]
    assert TAG_SMOKE not in found.tags
    assert TAG_IMAGE not in found.tags  # an empty custom attribute removes a note's tag too
    # Stored as real vSphere custom attributes, readable by any vSphere client.
    vm = vcenter.searchIndex.FindByInventoryPath(f"{DATACENTER}/vm/{found.name}")
    names = {field.key: field.name for field in vcenter.customFieldsManager.field}
    assert {names[value.key]: value.value for value in vm.customValue}[TAG_SMOKE] == ""


def test_promote_moves_the_channel_and_marks_the_superseded(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    first = baked(vcenter, image_name, baked_at="2026-11-01T22:00:00Z")
    second = baked(vcenter, image_name, baked_at="2026-11-08T22:00:00Z")

    adapter.promote(first, "stable")
    adapter.promote(second, "stable")
    by_id = {m.image_id: m.tags for m in adapter.list_managed_images(image_name)}
    promoted_at = by_id[second][TAG_PROMOTED_AT]
    adapter.promote(second, "stable")  # again: nothing changes

    by_id = {m.image_id: m.tags for m in adapter.list_managed_images(image_name)}
    assert by_id[second][TAG_CHANNEL] == "stable"
    assert by_id[second][TAG_PROMOTED_AT] == promoted_at
    assert TAG_CHANNEL not in by_id[first]
    assert TAG_SUPERSEDED_AT in by_id[first]
    assert TAG_PROMOTED_AT in by_id[first]  # the history stays


def test_smoke_clone_lifecycle_and_in_use(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    from pyVmomi import vim

    template = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest smoke"

    vm_id = adapter.launch_smoke_instance(
        template,
        name=f"bakery-smoke-{image_name}",
        public_key=key,
        user_data="#cloud-config\npackages: [curl]\n",
        tags={"bakery:role": "smoke", TAG_IMAGE: image_name},
    )

    vm = adapter.hook.vm(vm_id)
    assert vm.runtime.powerState == "poweredOn"
    assert not vm.config.template
    extra = {option.key: option.value for option in vm.config.extraConfig}
    assert extra["guestinfo.userdata.encoding"] == "base64"
    document = base64.b64decode(extra["guestinfo.userdata"]).decode()
    assert document.startswith("#cloud-config\n")
    assert yaml.safe_load(document) == {"packages": ["curl"], "ssh_authorized_keys": [key]}
    values = adapter.hook.custom_values(vm.customValue)
    assert values[TAG_CLONED_FROM] == template and values["bakery:role"] == "smoke"
    # No guest IP yet (vcsim has no guest): still booting as far as bakery can tell.
    assert adapter.smoke_instance_state(vm_id) == ("pending", None)
    assert adapter.images_in_use()[template] == f"vm bakery-smoke-{image_name}"

    # What VMware Tools reports once the guest is up; vcsim takes it as extraConfig.
    wait(
        vm.ReconfigVM_Task(
            spec=vim.vm.ConfigSpec(
                extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress", value="127.9.9.9")]
            )
        )
    )
    state, endpoint = adapter.smoke_instance_state(vm_id)
    assert state == "running" and endpoint is not None
    assert (endpoint.host, endpoint.ssh_port) == ("127.9.9.9", 22)

    adapter.destroy_smoke_instance(vm_id)
    adapter.destroy_smoke_instance(vm_id)  # idempotent

    assert adapter.smoke_instance_state(vm_id) == ("failed", None)
    assert template not in adapter.images_in_use()
    assert not adapter.hook.vm_exists(vm_id)


def test_smoke_user_data_must_be_cloud_config(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    template = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z")
    with pytest.raises(ValueError, match="#cloud-config"):
        adapter.launch_smoke_instance(
            template, name=f"never-{image_name}", public_key="k", user_data="#!/bin/sh", tags={}
        )


def test_delete_image_removes_only_bakery_templates(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    template = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z")
    foreign = make_template(vcenter, f"foreign-{image_name}", notes="not bakery's")

    assert adapter.delete_image(template) == [template]
    assert adapter.delete_image(template) == []  # already gone
    assert adapter.list_managed_images(image_name) == []
    with pytest.raises(ValueError, match="not a bakery template"):
        adapter.delete_image(foreign._moId)
    assert adapter.hook.vm_exists(foreign._moId)


def test_unknown_datacenter_is_named(vcsim: Any) -> None:
    target = VsphereTarget(
        datacenters=("DC9",),
        source_template=BASE_TEMPLATE,
        cluster=CLUSTER,
        datastore=DATASTORE,
        connection_id=CONN_ID,
    )
    adapter = VsphereAdapter(target=target, location="DC9")
    with pytest.raises(LookupError, match="datacenter 'DC9'"):
        adapter.list_managed_images()
    adapter.close()


def test_packer_inputs_keep_the_password_out_of_variables(
    adapter: VsphereAdapter, vcsim: Any, base_template: Any, tmp_path: Path
) -> None:
    image = catalog_image("web", adapter.target)
    inputs = adapter.packer_inputs(
        image=image,
        location=DATACENTER,
        bake_id="bk-0123456789abcdef",
        artifact_name="bakery-web-20261126-220000-01234567",
        tags={TAG_MANAGED: "true", TAG_IMAGE: "web", "bakery:dag-run-id": "scheduled__x"},
        work_dir=tmp_path,
    )

    assert inputs.template.name == "vsphere-clone.pkr.hcl" and inputs.template.is_file()
    assert inputs.env == {"PKR_VAR_vsphere_password": vcsim.password}
    assert list(inputs.secrets) == [vcsim.password]
    assert vcsim.password not in repr(inputs.variables)
    variables = inputs.variables
    assert variables["vcenter_server"] == f"127.0.0.1:{vcsim.port}"
    assert variables["vm_name"] == "bakery-web-20261126-220000-01234567"
    assert variables["insecure_connection"] is True
    assert Path(str(variables["provision_script"])).is_file()
    notes = parse_notes(str(variables["notes"]))
    assert json.loads(str(variables["tags_json"])) == notes
    assert notes[TAG_BAKE_ID] == "bk-0123456789abcdef"
    assert notes[TAG_SOURCE_IMAGE] == base_template._moId
    assert notes["bakery:dag-run-id"] == "scheduled__x"
    key_file = Path(str(variables["ssh_private_key_file"]))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in key_file.read_text()
    userdata = yaml.safe_load(base64.b64decode(str(variables["guestinfo_userdata"])))
    assert userdata["ssh_authorized_keys"][0].startswith("ssh-ed25519 ")


@pytest.mark.skipif(shutil.which("packer") is None, reason="PACKER MISSING: apt-get install packer")
def test_packer_validates_the_template_with_the_adapters_inputs(
    adapter: VsphereAdapter, vcsim: Any, tmp_path: Path
) -> None:
    from bakery.bake import write_var_file

    image = catalog_image("web", adapter.target)
    inputs = adapter.packer_inputs(
        image=image,
        location=DATACENTER,
        bake_id="bk-0123456789abcdef",
        artifact_name="bakery-web-20261126-220000-01234567",
        tags={TAG_MANAGED: "true", TAG_IMAGE: "web"},
        work_dir=tmp_path,
    )
    var_file = write_var_file(tmp_path / "bake.pkrvars.json", inputs.variables)
    assert vcsim.password not in var_file.read_text()

    result = subprocess.run(
        ["packer", "validate", f"-var-file={var_file}", str(inputs.template)],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "CHECKPOINT_DISABLE": "1",
            **inputs.env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_reap_orphans_removes_old_smoke_and_builder_vms_only(
    adapter: VsphereAdapter, vcenter: Any, image_name: str
) -> None:
    from datetime import timedelta

    from bakery.clouds.vsphere import TAG_LAUNCHED_AT

    template = baked(vcenter, image_name, baked_at="2026-11-20T22:00:00Z")
    smoke = {"bakery:role": "smoke", TAG_IMAGE: image_name, TAG_MANAGED: "true"}
    old = adapter.launch_smoke_instance(
        template, name=f"old-smoke-{image_name}", public_key="k", user_data=None, tags=smoke
    )
    fresh = adapter.launch_smoke_instance(
        template, name=f"new-smoke-{image_name}", public_key="k", user_data=None, tags=smoke
    )
    adapter.set_tags(old, {TAG_LAUNCHED_AT: "2026-01-01T00:00:00Z"})
    # A builder Packer never finished: bake-time tags, still a VM.
    builder_tags = {
        TAG_MANAGED: "true",
        TAG_IMAGE: image_name,
        TAG_BAKED_AT: "2026-01-01T00:00:00Z",
    }
    builder = make_template(
        vcenter, f"builder-{image_name}", settings={"bakery.tags": json.dumps(builder_tags)}
    )
    cluster = vcenter.searchIndex.FindByInventoryPath(f"{DATACENTER}/host/{CLUSTER}")
    builder.MarkAsVirtualMachine(pool=cluster.resourcePool)
    image = catalog_image(image_name, adapter.target)
    scoped = VsphereAdapter(image=image, target=adapter.target, location=DATACENTER)

    reaped = scoped.reap_orphans(older_than=datetime.now(UTC) - timedelta(hours=2))

    assert sorted(reaped) == sorted([old, builder._moId])
    assert not adapter.hook.vm_exists(old) and not adapter.hook.vm_exists(builder._moId)
    assert adapter.hook.vm_exists(fresh) and adapter.hook.vm_exists(template)
    adapter.destroy_smoke_instance(fresh)
    scoped.close()
