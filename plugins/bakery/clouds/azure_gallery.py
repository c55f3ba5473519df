"""The Azure adapter: Compute Gallery image versions (and the managed images behind them).

Every call goes through azure-mgmt-compute's client from BakeryAzureComputeHook (an
Airflow connection). Writes are Azure long-running operations; the adapter starts them
and records each one's `Azure-AsyncOperation` URL in `started_operations`, and the
operators wait for those in a trigger (CloudOperationsTrigger) rather than in a worker.
Azure tag names may hold `:`, so bakery's tag keys are stored as they are.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError
from azure.core.rest import HttpRequest

from bakery.clouds.base import ManagedImage, PackerInputs
from bakery.constants import (
    TAG_BAKE_ID,
    TAG_CHANNEL,
    TAG_IMAGE,
    TAG_LOCATION,
    TAG_MANAGED,
    TAG_PROMOTED_AT,
    TAG_SUPERSEDED_AT,
    include_dir,
)
from bakery.smoke.transport import Endpoint

if TYPE_CHECKING:
    from azure.mgmt.compute import ComputeManagementClient

    from bakery.catalog import AzureTarget, Image
    from bakery.hooks.azure_compute import BakeryAzureComputeHook

VERSION_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/"
    r"Microsoft\.Compute/galleries/(?P<gallery>[^/]+)/images/(?P<definition>[^/]+)/"
    r"versions/(?P<version>[^/]+)$",
    re.IGNORECASE,
)
RESOURCE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/(?P<group>[^/]+)/providers/[^/]+/[^/]+/(?P<name>[^/]+)",
    re.IGNORECASE,
)
# Network resources are read through the compute client's pipeline (same credential,
# retries and TLS settings); bakery needs two GETs, not a second SDK.
NETWORK_API_VERSION = "2023-09-01"
SMOKE_STATES = {"Creating": "pending", "Updating": "pending", "Succeeded": "running"}


class AzureOperationError(RuntimeError):
    """An Azure long-running operation ended Failed or Canceled."""


@dataclass(frozen=True)
class OperationState:
    status: str  # InProgress | Succeeded | Failed | Canceled
    error: str | None
    retry_after: float | None


@dataclass(frozen=True)
class Promotion:
    image_id: str
    changed: bool
    superseded: tuple[str, ...]


def parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def arm_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_name(started: datetime, taken: Iterable[str] = ()) -> str:
    """Gallery versions are Major.Minor.Patch integers: `2026.1126.84344` for 08:43:44 on
    26 Nov 2026, the patch bumped past any version already in the definition."""
    used = set(taken)
    patch = int(started.strftime("%H%M%S"))
    while f"{started:%Y}.{int(started.strftime('%m%d'))}.{patch}" in used:
        patch += 1
    return f"{started:%Y}.{int(started.strftime('%m%d'))}.{patch}"


class AzureAdapter:
    """bakery's images of one catalog image in one Azure location."""

    def __init__(
        self,
        *,
        image: Image,
        target: AzureTarget,
        location: str,
        hook: BakeryAzureComputeHook | None = None,
        catalog_dir: Path | None = None,
    ) -> None:
        self.image = image
        self.target = target
        self.location = location
        self.definition = target.image_definition or image.name
        self._hook = hook
        self.catalog_dir = catalog_dir or include_dir()
        self.started_operations: list[str] = []

    @cached_property
    def hook(self) -> BakeryAzureComputeHook:
        if self._hook is not None:
            return self._hook
        from bakery.hooks.azure_compute import BakeryAzureComputeHook

        return BakeryAzureComputeHook(
            azure_conn_id=self.target.connection_id, subscription_id=self.target.subscription_id
        )

    @cached_property
    def client(self) -> ComputeManagementClient:
        return self.hook.get_conn()

    @property
    def group(self) -> str:
        return self.target.resource_group

    def version_id(self, version: str) -> str:
        return (
            f"/subscriptions/{self.hook.subscription_id}/resourceGroups/{self.group}/providers/"
            f"Microsoft.Compute/galleries/{self.target.gallery}/images/{self.definition}/"
            f"versions/{version}"
        )

    # -- operations ------------------------------------------------------------------------

    def _start(self, begin: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
        """Start a long-running operation without waiting; returns its status URL."""
        headers: dict[str, str] = {}

        def keep_headers(pipeline_response: Any) -> None:
            response = pipeline_response.http_response
            if 200 <= response.status_code < 300:
                headers.update({k.lower(): v for k, v in response.headers.items()})

        begin(*args, polling=False, raw_response_hook=keep_headers, **kwargs)
        url = headers.get("azure-asyncoperation") or headers.get("location")
        if url:
            self.started_operations.append(url)
        return url

    def operation_state(self, url: str) -> OperationState:
        """One poll of an operation's status URL (429s are retried by the SDK's pipeline,
        honouring Retry-After)."""
        response = self.client.send_request(HttpRequest("GET", url))
        retry_after = response.headers.get("Retry-After")
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        if response.status_code == 202:
            return OperationState("InProgress", None, delay)
        if response.status_code == 204 or not response.content:
            return OperationState("Succeeded", None, delay)
        body = response.json()
        if response.status_code >= 400 and "status" not in body:
            error = body.get("error", {})
            return OperationState("Failed", f"{error.get('code')}: {error.get('message')}", None)
        status = body.get("status", "InProgress")
        error = body.get("error")
        message = f"{error.get('code')}: {error.get('message')}" if error else None
        return OperationState(status, message, delay)

    # -- images ----------------------------------------------------------------------------

    def _versions(self) -> list[Any]:
        try:
            return list(
                self.client.gallery_image_versions.list_by_gallery_image(
                    self.group, self.target.gallery, self.definition
                )
            )
        except ResourceNotFoundError:
            return []

    def _managed(self, version: Mapping[str, Any]) -> ManagedImage:
        tags = dict(version.get("tags") or {})
        profile = version["properties"].get("publishingProfile", {})
        return ManagedImage(
            image_id=version["id"],
            name=tags.get("Name") or version["name"],
            created=parse_time(profile.get("publishedDate")),
            tags=tags,
            location=tags.get(TAG_LOCATION) or version["location"],
        )

    def list_managed_images(self, image: str | None = None) -> list[ManagedImage]:
        """bakery's versions of `image` (default: this adapter's) made for this location."""
        wanted = image or self.image.name
        found = []
        for version in self._versions():
            managed = self._managed(version)
            if (
                managed.tags.get(TAG_MANAGED) == "true"
                and managed.tags.get(TAG_IMAGE) == wanted
                and managed.location == self.location
            ):
                found.append(managed)
        return sorted(found, key=lambda item: item.created)

    def find_baked_image(self, bake_id: str) -> ManagedImage | None:
        for version in self._versions():
            tags = version.get("tags") or {}
            state = version["properties"].get("provisioningState")
            if tags.get(TAG_BAKE_ID) == bake_id and state == "Succeeded":
                return self._managed(version)
        return None

    def _version_parts(self, image_id: str) -> tuple[str, str, str, str]:
        match = VERSION_ID.match(image_id)
        if match is None:
            raise ValueError(f"not a gallery image version id: {image_id!r}")
        return match["group"], match["gallery"], match["definition"], match["version"]

    def _patch_version(self, image_id: str, body: Mapping[str, Any]) -> None:
        group, gallery, definition, version = self._version_parts(image_id)
        self._start(
            self.client.gallery_image_versions.begin_update,
            group,
            gallery,
            definition,
            version,
            dict(body),
        )

    def _tags_of(self, image_id: str) -> dict[str, str]:
        group, gallery, definition, version = self._version_parts(image_id)
        found = self.client.gallery_image_versions.get(group, gallery, definition, version)
        return dict(found.get("tags") or {})

    def set_tags(self, image_id: str, tags: Mapping[str, str]) -> None:
        # PATCH replaces the whole tag set, so merge first.
        self._patch_version(image_id, {"tags": {**self._tags_of(image_id), **tags}})

    def remove_tags(self, image_id: str, keys: Sequence[str]) -> None:
        kept = {k: v for k, v in self._tags_of(image_id).items() if k not in set(keys)}
        self._patch_version(image_id, {"tags": kept})

    def images_in_use(self) -> dict[str, str]:
        """Version id -> the VM or scale set launched from it. A reference to the image
        definition itself (always the latest version) counts for the current latest."""
        versions = self._versions()
        by_id = {version["id"].lower(): version["id"] for version in versions}
        definition_id = by_id and next(iter(by_id.values())).rsplit("/versions/", 1)[0].lower()
        latest = _latest(versions)
        users: list[tuple[str, str]] = []
        for vm in self.client.virtual_machines.list_all():
            users.append((_image_reference(vm["properties"]), f"virtual machine {vm['name']}"))
        for scale_set in self.client.virtual_machine_scale_sets.list_all():
            profile = scale_set["properties"].get("virtualMachineProfile", {})
            users.append((_image_reference(profile), f"scale set {scale_set['name']}"))
        in_use: dict[str, str] = {}
        for reference, user in users:
            key = reference.lower()
            if key in by_id:
                in_use.setdefault(by_id[key], user)
            elif key and key == definition_id and latest is not None:
                in_use.setdefault(latest["id"], f"{user} (as the definition's latest)")
        return in_use

    def delete_image(self, image_id: str) -> list[str]:
        """Delete the version, then the managed image it was published from (when bakery
        made that managed image); returns both ids."""
        group, gallery, definition, version = self._version_parts(image_id)
        found = self.client.gallery_image_versions.get(group, gallery, definition, version)
        source = found["properties"].get("storageProfile", {}).get("source", {}).get("id", "")
        self._start(
            self.client.gallery_image_versions.begin_delete, group, gallery, definition, version
        )
        deleted = [found["id"]]
        match = RESOURCE_ID.match(source)
        if match and "/providers/microsoft.compute/images/" in source.lower():
            try:
                managed = self.client.images.get(match["group"], match["name"])
            except ResourceNotFoundError:
                return deleted
            if (managed.get("tags") or {}).get(TAG_MANAGED) == "true":
                self._start(self.client.images.begin_delete, match["group"], match["name"])
                deleted.append(managed["id"])
        return deleted

    def promote(self, image_id: str, channel: str) -> None:
        self.promote_version(image_id, channel, now=datetime.now(UTC))

    def promote_version(self, image_id: str, channel: str, *, now: datetime) -> Promotion:
        """Tag the version as the channel's current one and (promotion `latest`) make it the
        definition's latest: excluded from latest on every other version. Superseded
        versions lose the channel tag and get an end-of-life date. Idempotent."""
        versions = self._versions()
        target = next((v for v in versions if v["id"].lower() == image_id.lower()), None)
        if target is None:
            raise LookupError(f"no gallery image version {image_id}")
        current = [v for v in versions if (v.get("tags") or {}).get(TAG_CHANNEL) == channel]
        as_latest = self.target.promotion == "latest"
        excluded = [
            v for v in versions if v["properties"]["publishingProfile"].get("excludeFromLatest")
        ]
        settled = [v["id"] for v in current] == [target["id"]] and (
            not as_latest or len(excluded) == len(versions) - 1 and target not in excluded
        )
        if settled:
            return Promotion(target["id"], changed=False, superseded=())
        stamp = arm_time(now)
        profile: dict[str, Any] = {"targetRegions": self._target_regions()}
        if as_latest:
            profile["excludeFromLatest"] = False
        self._patch_version(
            target["id"],
            {
                "tags": {
                    **(target.get("tags") or {}),
                    TAG_CHANNEL: channel,
                    TAG_PROMOTED_AT: stamp,
                },
                "properties": {"publishingProfile": profile},
            },
        )
        superseded = []
        end_of_life = arm_time(now + timedelta(days=self.target.end_of_life_days))
        for version in versions:
            if version["id"] == target["id"]:
                continue
            tags = dict(version.get("tags") or {})
            update: dict[str, Any] = {}
            if tags.get(TAG_CHANNEL) == channel:
                tags.pop(TAG_CHANNEL)
                tags[TAG_SUPERSEDED_AT] = stamp
                update["tags"] = tags
                update["properties"] = {"publishingProfile": {"endOfLifeDate": end_of_life}}
                superseded.append(version["id"])
            if as_latest and not version["properties"]["publishingProfile"].get(
                "excludeFromLatest"
            ):
                update.setdefault("properties", {"publishingProfile": {}})
                update["properties"]["publishingProfile"]["excludeFromLatest"] = True
            if update:
                self._patch_version(version["id"], update)
        return Promotion(target["id"], changed=True, superseded=tuple(superseded))

    def _target_regions(self) -> list[dict[str, Any]]:
        return [
            {"name": region, "regionalReplicaCount": self.target.replica_count}
            for region in dict.fromkeys((self.location, *self.target.replica_regions))
        ]

    def register_version(
        self, *, source_image_id: str, version: str, tags: Mapping[str, str]
    ) -> str:
        """Publish an existing managed image as a new version of the definition (what
        Packer's shared_image_gallery_destination does after its build); returns its id."""
        self._start(
            self.client.gallery_image_versions.begin_create_or_update,
            self.group,
            self.target.gallery,
            self.definition,
            version,
            {
                "location": self.location,
                "tags": {**tags, TAG_LOCATION: self.location},
                "properties": {
                    "publishingProfile": {
                        "targetRegions": self._target_regions(),
                        "excludeFromLatest": True,  # until promoted
                    },
                    "storageProfile": {"source": {"id": source_image_id}},
                },
            },
        )
        return self.version_id(version)

    def version_names(self) -> list[str]:
        return [version["name"] for version in self._versions()]

    # -- smoke instances -------------------------------------------------------------------

    def launch_smoke_instance(
        self,
        image_id: str,
        *,
        name: str,
        public_key: str,
        user_data: str | None,
        tags: Mapping[str, str],
    ) -> str:
        """A VM whose NIC, public IP and OS disk are deleted with it (deleteOption)."""
        vm_name = re.sub(r"[^A-Za-z0-9-]", "-", name)[:64].strip("-")
        user = self.target.ssh_username
        ip_config: dict[str, Any] = {"subnet": {"id": self.target.subnet_id}}
        if self.target.ssh_interface == "public_ip":
            ip_config["publicIPAddressConfiguration"] = {
                "name": f"{vm_name}-ip",
                "properties": {"deleteOption": "Delete"},
            }
        os_profile: dict[str, Any] = {
            "computerName": vm_name[:15],
            "adminUsername": user,
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [
                        {"path": f"/home/{user}/.ssh/authorized_keys", "keyData": public_key}
                    ]
                },
            },
        }
        if user_data:
            os_profile["customData"] = base64.b64encode(user_data.encode()).decode()
        self._start(
            self.client.virtual_machines.begin_create_or_update,
            self.group,
            vm_name,
            {
                "location": self.location,
                "tags": dict(tags),
                "properties": {
                    "hardwareProfile": {"vmSize": self.target.vm_size},
                    "storageProfile": {
                        "imageReference": {"id": image_id},
                        "osDisk": {"createOption": "FromImage", "deleteOption": "Delete"},
                    },
                    "osProfile": os_profile,
                    "networkProfile": {
                        "networkApiVersion": "2020-11-01",
                        "networkInterfaceConfigurations": [
                            {
                                "name": f"{vm_name}-nic",
                                "properties": {
                                    "primary": True,
                                    "deleteOption": "Delete",
                                    "ipConfigurations": [
                                        {"name": "ipconfig1", "properties": ip_config}
                                    ],
                                },
                            }
                        ],
                    },
                },
            },
        )
        return (
            f"/subscriptions/{self.hook.subscription_id}/resourceGroups/{self.group}/providers/"
            f"Microsoft.Compute/virtualMachines/{vm_name}"
        )

    def _vm(self, instance_id: str) -> Any | None:
        match = RESOURCE_ID.match(instance_id)
        if match is None:
            raise ValueError(f"not a VM resource id: {instance_id!r}")
        try:
            return self.client.virtual_machines.get(match["group"], match["name"])
        except ResourceNotFoundError:
            return None

    def _get_network(self, resource_id: str) -> dict[str, Any]:
        response = self.client.send_request(
            HttpRequest("GET", f"{resource_id}?api-version={NETWORK_API_VERSION}")
        )
        response.raise_for_status()
        return response.json()

    def smoke_instance_state(self, instance_id: str) -> tuple[str, Endpoint | None]:
        vm = self._vm(instance_id)
        if vm is None:
            return "failed", None
        state = SMOKE_STATES.get(vm["properties"].get("provisioningState", ""), "failed")
        if state != "running":
            return state, None
        nics = vm["properties"].get("networkProfile", {}).get("networkInterfaces", [])
        if not nics:
            return "pending", None
        nic = self._get_network(nics[0]["id"])
        config = nic["properties"]["ipConfigurations"][0]["properties"]
        address = config.get("privateIPAddress")
        if self.target.ssh_interface == "public_ip":
            public = config.get("publicIPAddress", {}).get("id")
            address = self._get_network(public)["properties"].get("ipAddress") if public else None
        return state, Endpoint(host=address) if address else None

    def launch_time(self, instance_id: str) -> int:
        """When the VM was created, in epoch seconds (0 if unknown)."""
        vm = self._vm(instance_id)
        created = vm["properties"].get("timeCreated") if vm is not None else None
        return int(parse_time(created).timestamp()) if created else 0

    def cloud_init_instance_id(self, instance_id: str) -> str:
        """The instance id cloud-init records on an Azure VM: its vmId."""
        vm = self._vm(instance_id)
        return str(vm["properties"].get("vmId", "")) if vm is not None else ""

    def destroy_smoke_instance(self, instance_id: str) -> None:
        match = RESOURCE_ID.match(instance_id)
        if match is None or self._vm(instance_id) is None:
            return
        self._start(self.client.virtual_machines.begin_delete, match["group"], match["name"])

    def reap_orphans(self, *, older_than: datetime) -> list[str]:
        """Delete this image's smoke VMs (with what they own) created before `older_than`:
        leftovers of a task whose cleanup never ran. Returns the VM ids."""
        from bakery.constants import TAG_ROLE

        reaped = []
        for vm in self.client.virtual_machines.list(self.group):
            tags = vm.get("tags") or {}
            created = vm["properties"].get("timeCreated")
            if (
                tags.get(TAG_MANAGED) == "true"
                and tags.get(TAG_IMAGE) == self.image.name
                and tags.get(TAG_ROLE) in ("smoke", "builder")
                and created
                and parse_time(created) < older_than
            ):
                self.destroy_smoke_instance(vm["id"])
                reaped.append(vm["id"])
        return reaped

    def credential_secrets(self) -> list[str]:
        """Secret values a baked image must never contain (the hygiene scan looks)."""
        secret = self.hook.packer_environment().get("ARM_CLIENT_SECRET")
        return [secret] if secret else []

    # -- packer ----------------------------------------------------------------------------

    def published_image_id(self, variables: Mapping[str, Any], artifact_id: str) -> str:
        """Packer's artifact is the managed image; bakery tracks the gallery version."""
        return self.version_id(str(variables["image_version"]))

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

        source = self.target.source
        managed = RESOURCE_ID.match(source.image_id or "")
        subnet = self.target.subnet_id.split("/")
        variables: dict[str, Any] = {
            **image_variables(image, self.catalog_dir),
            "location": location,
            "resource_group": self.group,
            "gallery": self.target.gallery,
            "image_definition": self.definition,
            "image_version": version_name(datetime.now(UTC), self.version_names()),
            "managed_image_name": artifact_name,
            "replication_regions": [location, *self.target.replica_regions],
            "vm_size": self.target.vm_size,
            "ssh_username": self.target.ssh_username,
            "source_image_name": managed["name"] if managed else "",
            "source_image_resource_group": managed["group"] if managed else "",
            "source_publisher": source.publisher or "",
            "source_offer": source.offer or "",
            "source_sku": source.sku or "",
            "virtual_network_resource_group": subnet[4],
            "virtual_network_name": subnet[8],
            "virtual_network_subnet_name": subnet[10],
            "manifest_path": str(work_dir / "manifest.json"),
            "tags": {**tags, TAG_LOCATION: location},
        }
        env = self.hook.packer_environment()
        return PackerInputs(
            template=self.catalog_dir / self.target.template,
            variables=variables,
            env=env,
            secrets=[env["ARM_CLIENT_SECRET"]] if env.get("ARM_CLIENT_SECRET") else [],
        )


def _image_reference(properties: Mapping[str, Any]) -> str:
    return (properties.get("storageProfile", {}).get("imageReference") or {}).get("id") or ""


def _latest(versions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    eligible = [
        v
        for v in versions
        if not v["properties"].get("publishingProfile", {}).get("excludeFromLatest")
        and v["properties"].get("provisioningState") == "Succeeded"
    ]
    return max(eligible, key=lambda v: tuple(int(p) for p in v["name"].split(".")), default=None)
