"""The vSphere adapter: bakery's images are VM templates, one per bake, in a datacenter.

Where bakery's tags live on vSphere:
- bake-time tags (`bakery:image`, `bakery:bake-id`, ...) are one JSON object in the
  template's advanced setting (extraConfig) `bakery.tags`, and for people also lines
  `key=value` in its notes: Packer 1.6.6's vsphere-clone can set both but not custom
  attributes (and vcsim drops notes set at clone time, so bakery reads the setting);
- everything set later (`bakery:smoke`, `bakery:channel`, `bakery:promoted-at`, ...) is a
  custom attribute of the same name. A custom attribute wins over a note, and an empty
  one means "removed" (vSphere cannot unset a custom attribute on one object).

vCenter keeps no record of which template a VM was cloned from, so "in use" means VMs
carrying the custom attribute `bakery:cloned-from` (bakery sets it on every VM it clones;
deployment tooling can set it too).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bakery.clouds.base import ManagedImage, PackerInputs
from bakery.constants import (
    TAG_BAKE_ID,
    TAG_CHANNEL,
    TAG_IMAGE,
    TAG_MANAGED,
    TAG_PREFIX,
    TAG_PROMOTED_AT,
    TAG_SOURCE_IMAGE,
    TAG_SUPERSEDED_AT,
    include_dir,
)
from bakery.hooks.vsphere import VsphereHook
from bakery.smoke.transport import Endpoint

if TYPE_CHECKING:
    from bakery.catalog import Image, VsphereTarget

TAG_BAKED_AT = f"{TAG_PREFIX}baked-at"
TAG_CLONED_FROM = f"{TAG_PREFIX}cloned-from"
TAG_LAUNCHED_AT = f"{TAG_PREFIX}launched-at"
NOTES_HEADER = "Golden image template made by bakery. Bake-time tags:"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TAGS_SETTING = "bakery.tags"
IMAGE_PROPERTIES = (
    "name",
    "config.template",
    "config.extraConfig",
    "config.createDate",
    "customValue",
)
VM_PROPERTIES = ("name", "config.template", "customValue")
ORPHAN_PROPERTIES = ("name", "config.template", "config.extraConfig", "customValue")
SSH_PORT = 22


def render_notes(tags: Mapping[str, str]) -> str:
    """The template's notes: a readable header, then one `key=value` a line."""
    return "\n".join([NOTES_HEADER, *(f"{key}={tags[key]}" for key in sorted(tags))])


def parse_notes(notes: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for line in (notes or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith(TAG_PREFIX):
            tags[key.strip()] = value.strip()
    return tags


def setting_tags(extra_config: Sequence[Any] | None) -> dict[str, str]:
    """Bake-time tags from the `bakery.tags` advanced setting (JSON object)."""
    for option in extra_config or []:
        if option.key == TAGS_SETTING and option.value:
            try:
                document = json.loads(option.value)
            except ValueError:
                return {}
            if isinstance(document, dict):
                return {str(key): str(value) for key, value in document.items()}
    return {}


def cloud_config(public_key: str, user_data: str | None = None) -> str:
    """cloud-config for cloud-init's VMware datasource (guestinfo.userdata): the one-off
    key in the default user's authorized_keys, merged into the image's own cloud-config."""
    document: dict[str, Any] = {}
    if user_data:
        if not user_data.lstrip().startswith("#cloud-config"):
            raise ValueError("vSphere smoke user_data must be a #cloud-config document")
        document = yaml.safe_load(user_data) or {}
    document["ssh_authorized_keys"] = [*document.get("ssh_authorized_keys", []), public_key]
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=True)


def guestinfo_userdata(document: str) -> list[Any]:
    from pyVmomi import vim

    encoded = base64.b64encode(document.encode()).decode()
    return [
        vim.option.OptionValue(key="guestinfo.userdata", value=encoded),
        vim.option.OptionValue(key="guestinfo.userdata.encoding", value="base64"),
    ]


def guestinfo_metadata(instance_id: str, hostname: str) -> list[Any]:
    """cloud-init VMware datasource metadata: the instance id and hostname."""
    from pyVmomi import vim

    document = json.dumps({"instance-id": instance_id, "local-hostname": hostname})
    return [
        vim.option.OptionValue(
            key="guestinfo.metadata", value=base64.b64encode(document.encode()).decode()
        ),
        vim.option.OptionValue(key="guestinfo.metadata.encoding", value="base64"),
    ]


def _created(create_date: datetime | None, tags: Mapping[str, str]) -> datetime:
    if create_date is not None:
        return create_date.astimezone(UTC)
    stamp = tags.get(TAG_BAKED_AT)
    if stamp:
        try:
            return datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            pass
    # Unknown age: shown as the oldest possible, so the audit flags it rather than hide it.
    return EPOCH


class VsphereAdapter:
    """bakery's CloudAdapter for one vSphere datacenter of one catalog target."""

    def __init__(
        self,
        *,
        target: VsphereTarget,
        location: str,
        image: Image | None = None,
        catalog_dir: Path | None = None,
        hook: VsphereHook | None = None,
    ) -> None:
        self.target = target
        self.datacenter_name = location
        self.image = image
        self.catalog_dir = catalog_dir
        self.hook = hook or VsphereHook(vsphere_conn_id=target.connection_id)

    @property
    def location(self) -> str:
        return self.datacenter_name

    def _datacenter(self) -> Any:
        return self.hook.datacenter(self.datacenter_name)

    # -- images ------------------------------------------------------------------------

    def _tags(self, row: Mapping[str, Any]) -> dict[str, str]:
        tags = setting_tags(row.get("config.extraConfig"))
        tags.update(self.hook.custom_values(row.get("customValue") or []))
        return {key: value for key, value in tags.items() if value != ""}

    def _tags_of(self, vm: Any) -> dict[str, str]:
        return self._tags(
            {"config.extraConfig": vm.config.extraConfig, "customValue": vm.customValue}
        )

    def _managed(self, row: Mapping[str, Any]) -> ManagedImage | None:
        if not row.get("config.template"):
            return None
        tags = self._tags(row)
        if tags.get(TAG_MANAGED) != "true":
            return None
        return ManagedImage(
            image_id=row["moref"],
            name=row["name"],
            created=_created(row.get("config.createDate"), tags),
            tags=tags,
            location=self.datacenter_name,
        )

    def list_managed_images(self, image: str | None = None) -> list[ManagedImage]:
        """bakery's templates of `image` (default: the adapter's catalog image; every
        image's when the adapter has none), oldest first."""
        rows = self.hook.vm_properties(self._datacenter(), IMAGE_PROPERTIES)
        found = [managed for row in rows if (managed := self._managed(row)) is not None]
        wanted = image or (self.image.name if self.image is not None else None)
        if wanted is not None:
            found = [managed for managed in found if managed.tags.get(TAG_IMAGE) == wanted]
        return sorted(found, key=lambda managed: (managed.created, managed.name))

    def find_baked_image(self, bake_id: str) -> ManagedImage | None:
        baked = [m for m in self.list_managed_images() if m.tags.get(TAG_BAKE_ID) == bake_id]
        return baked[-1] if baked else None

    def set_tags(self, image_id: str, tags: Mapping[str, str]) -> None:
        self.hook.set_custom_values(self.hook.vm(image_id), tags)

    def remove_tags(self, image_id: str, keys: Sequence[str]) -> None:
        self.hook.set_custom_values(self.hook.vm(image_id), dict.fromkeys(keys, ""))

    def images_in_use(self) -> dict[str, str]:
        users: dict[str, list[str]] = {}
        for row in self.hook.vm_properties(self._datacenter(), VM_PROPERTIES):
            if row.get("config.template"):
                continue
            source = self.hook.custom_values(row.get("customValue") or []).get(TAG_CLONED_FROM)
            if source:
                users.setdefault(source, []).append(row["name"])
        return {source: "vm " + ", ".join(sorted(names)) for source, names in users.items()}

    def delete_image(self, image_id: str) -> list[str]:
        from pyVmomi import vmodl

        template = self.hook.vm(image_id)
        try:
            name = template.name
            tags = self._tags_of(template)
            is_template = template.config.template
        except vmodl.fault.ManagedObjectNotFound:
            return []
        if not is_template or tags.get(TAG_MANAGED) != "true":
            raise ValueError(f"refusing to delete {image_id} ({name}): not a bakery template")
        self.hook.wait(template.Destroy_Task(), f"delete template {name}")
        return [image_id]

    def promote(self, image_id: str, channel: str) -> None:
        """`image_id` becomes the one template of its image carrying `bakery:channel`;
        the ones it replaces get `bakery:superseded-at`. Idempotent."""
        mine = next((m for m in self.list_managed_images() if m.image_id == image_id), None)
        if mine is None:
            raise LookupError(f"{image_id} is not a bakery template in {self.datacenter_name}")
        image = mine.tags.get(TAG_IMAGE)
        current = [
            m.image_id
            for m in self.list_managed_images(image)
            if m.tags.get(TAG_CHANNEL) == channel
        ]
        if current == [image_id]:
            return
        stamp = datetime.now(UTC).strftime(TIME_FORMAT)
        self.set_tags(image_id, {TAG_CHANNEL: channel, TAG_PROMOTED_AT: stamp})
        for previous in current:
            if previous != image_id:
                self.remove_tags(previous, [TAG_CHANNEL])
                self.set_tags(previous, {TAG_SUPERSEDED_AT: stamp})

    # -- smoke VMs -------------------------------------------------------------------------

    def _placement(self, datacenter: Any) -> tuple[Any, Any, Any, Any]:
        """Folder, resource pool, datastore and host (or None) for VMs bakery clones."""
        cluster = self.hook.require(datacenter, "host", self.target.cluster, "cluster")
        if self.target.resource_pool:
            pool = self.hook.require(
                datacenter,
                "host",
                f"{self.target.cluster}/Resources/{self.target.resource_pool}",
                "resource pool",
            )
        else:
            pool = cluster.resourcePool
        host = None
        if self.target.host:
            host = self.hook.require(
                datacenter, "host", f"{self.target.cluster}/{self.target.host}", "host"
            )
        datastore = self.hook.require(datacenter, "datastore", self.target.datastore, "datastore")
        return self.hook.vm_folder(datacenter, self.target.folder), pool, datastore, host

    def launch_smoke_instance(
        self,
        image_id: str,
        *,
        name: str,
        public_key: str,
        user_data: str | None,
        tags: Mapping[str, str],
    ) -> str:
        from pyVmomi import vim

        datacenter = self._datacenter()
        folder, pool, datastore, host = self._placement(datacenter)
        spec = vim.vm.CloneSpec(
            location=vim.vm.RelocateSpec(pool=pool, datastore=datastore, host=host),
            template=False,
            powerOn=False,
            config=vim.vm.ConfigSpec(
                extraConfig=guestinfo_userdata(cloud_config(public_key, user_data))
            ),
        )
        template = self.hook.vm(image_id)
        clone = self.hook.wait(
            template.CloneVM_Task(folder=folder, name=name, spec=spec), f"clone {name}"
        )
        try:
            # cloud-init's instance id is the VM's managed object id, known only now.
            self.hook.wait(
                clone.ReconfigVM_Task(
                    spec=vim.vm.ConfigSpec(extraConfig=guestinfo_metadata(clone._moId, name))
                ),
                f"configure {name}",
            )
            self.hook.set_custom_values(
                clone,
                {
                    **tags,
                    TAG_CLONED_FROM: image_id,
                    TAG_LAUNCHED_AT: datetime.now(UTC).strftime(TIME_FORMAT),
                },
            )
            self.hook.wait(clone.PowerOnVM_Task(), f"power on {name}")
        except Exception:
            self.destroy_smoke_instance(clone._moId)
            raise
        return clone._moId

    def smoke_instance_state(self, instance_id: str) -> tuple[str, Endpoint | None]:
        from pyVmomi import vim, vmodl

        vm = self.hook.vm(instance_id)
        try:
            power = vm.runtime.powerState
            address = vm.guest.ipAddress
        except vmodl.fault.ManagedObjectNotFound:
            return "failed", None
        if power != vim.VirtualMachinePowerState.poweredOn:
            return "failed", None
        if not address:
            return "pending", None
        return "running", Endpoint(host=address, ssh_port=SSH_PORT)

    def reap_orphans(self, *, older_than: datetime) -> list[str]:
        """Destroy this image's smoke VMs launched before `older_than`, and builder VMs
        (bakery's bake-time tags, never converted into a template) baked before it:
        leftovers of a task whose cleanup never ran. Returns their managed object ids."""
        from bakery.constants import TAG_ROLE

        reaped = []
        for row in self.hook.vm_properties(self._datacenter(), ORPHAN_PROPERTIES):
            if row.get("config.template"):
                continue
            tags = self._tags(row)
            if tags.get(TAG_MANAGED) != "true":
                continue
            if self.image is not None and tags.get(TAG_IMAGE) != self.image.name:
                continue
            stamp = tags.get(TAG_LAUNCHED_AT if tags.get(TAG_ROLE) == "smoke" else TAG_BAKED_AT)
            if stamp and _created(None, {TAG_BAKED_AT: stamp}) < older_than:
                self.destroy_smoke_instance(row["moref"])
                reaped.append(row["moref"])
        return reaped

    def launch_time(self, instance_id: str) -> int:
        """When bakery launched the smoke VM, in epoch seconds (0 if unknown)."""
        from pyVmomi import vmodl

        try:
            values = self.hook.custom_values(self.hook.vm(instance_id).customValue)
        except vmodl.fault.ManagedObjectNotFound:
            return 0
        stamp = values.get(TAG_LAUNCHED_AT)
        if not stamp:
            return 0
        return int(datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC).timestamp())

    def cloud_init_instance_id(self, instance_id: str) -> str:
        """The instance id cloud-init records: the one bakery puts in guestinfo.metadata."""
        return instance_id

    def credential_secrets(self) -> list[str]:
        """Secret values a baked image must never contain (the hygiene scan looks)."""
        return [self.hook.login().password]

    def destroy_smoke_instance(self, instance_id: str) -> None:
        from pyVmomi import vim, vmodl

        vm = self.hook.vm(instance_id)
        try:
            name = vm.name
            if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
                self.hook.wait(vm.PowerOffVM_Task(), f"power off {name}")
            # Destroying a VM deletes its disks and NICs with it.
            self.hook.wait(vm.Destroy_Task(), f"destroy {name}")
        except vmodl.fault.ManagedObjectNotFound:
            return

    # -- Packer --------------------------------------------------------------------------

    def source_image_id(self) -> str:
        """The base template's managed object id, recorded as `bakery:source-image`."""
        return self.source_template().image_id

    def published_image_id(self, variables: Mapping[str, Any], artifact: str) -> str:
        """Packer's vsphere-clone artifact is the template's name; bakery tracks its
        managed object id, which survives renames and moves."""
        name = variables.get("vm_name", artifact)
        for managed in self.list_managed_images():
            if managed.name == name:
                return managed.image_id
        raise LookupError(
            f"Packer made {name!r}, but no such bakery template is in {self.location}"
        )

    def source_template(self) -> ManagedImage:
        """The base template the catalog names, as this datacenter has it."""
        template = self.hook.require(
            self._datacenter(), "vm", self.target.source_template, "source template"
        )
        tags = self._tags_of(template)
        return ManagedImage(
            image_id=template._moId,
            name=template.name,
            created=_created(template.config.createDate, tags),
            tags=tags,
            location=self.datacenter_name,
        )

    def packer_inputs(
        self,
        *,
        image: Image,
        location: str,
        bake_id: str,
        artifact_name: str,
        tags: Mapping[str, str],
        work_dir: Path,
    ) -> PackerInputs:
        from bakery.bake import image_variables
        from bakery.smoke.keys import new_key_pair

        if location != self.datacenter_name:
            raise ValueError(f"adapter for {self.datacenter_name} asked to bake in {location}")
        folder = self.catalog_dir or include_dir()
        login = self.hook.login()
        source = self.source_template()
        keys = new_key_pair()
        key_file = work_dir / "builder-ssh.key"
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(keys.private_openssh)
        notes = {
            TAG_SOURCE_IMAGE: source.image_id,
            **tags,
            TAG_BAKE_ID: bake_id,
            TAG_BAKED_AT: datetime.now(UTC).strftime(TIME_FORMAT),
        }
        variables = {
            **image_variables(image, folder),
            "vcenter_server": login.server,
            "vsphere_username": login.username,
            "insecure_connection": not login.verify_ssl,
            "datacenter": self.datacenter_name,
            "cluster": self.target.cluster,
            "host": self.target.host or "",
            "resource_pool": self.target.resource_pool or "",
            "datastore": self.target.datastore,
            "folder": self.target.folder,
            "network": self.target.network or "",
            "source_template": self.target.source_template,
            "vm_name": artifact_name,
            "cpus": self.target.cpus,
            "memory_mb": self.target.memory_mb,
            "notes": render_notes(notes),
            "tags_json": json.dumps(notes, sort_keys=True),
            "guestinfo_userdata": base64.b64encode(
                cloud_config(keys.public_openssh).encode()
            ).decode(),
            "ssh_username": self.target.ssh_username,
            "ssh_private_key_file": str(key_file),
            "manifest_path": str(work_dir / "manifest.json"),
        }
        return PackerInputs(
            template=folder / self.target.template,
            variables=variables,
            # Only the password is secret: Packer reads it from its environment as the
            # sensitive variable vsphere_password, and the runner redacts it from logs.
            env={"PKR_VAR_vsphere_password": login.password},
            secrets=[login.password],
        )

    def close(self) -> None:
        self.hook.close()
