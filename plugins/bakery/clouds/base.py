"""The interface every cloud adapter implements, so the lifecycle operators stay generic.

An adapter works on one catalog image in one cloud location (an AWS region, an Azure
location, a vSphere datacenter). Tag keys are bakery's (`bakery.constants`); an adapter
whose cloud cannot store a key as is maps it inside itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bakery.catalog import Image
    from bakery.smoke.transport import Endpoint


@dataclass(frozen=True)
class ManagedImage:
    """One bakery-made image/version/template in one cloud location."""

    image_id: str  # AMI id / gallery image version resource id / template moref or path
    name: str
    created: datetime  # tz-aware UTC
    tags: Mapping[str, str]  # bakery:* tags (Azure tags, vSphere custom attributes)
    location: str  # region / Azure location / vSphere datacenter


@dataclass(frozen=True)
class PackerInputs:
    """What `packer build` needs for one bake: variables go in a var-file, credentials in
    the environment, and every value of `secrets` is masked in logs."""

    template: Path
    variables: Mapping[str, Any]
    env: Mapping[str, str]
    secrets: Sequence[str]


class CloudAdapter(Protocol):
    def find_baked_image(self, bake_id: str) -> ManagedImage | None: ...

    def list_managed_images(self, image: str | None = None) -> list[ManagedImage]: ...

    def set_tags(self, image_id: str, tags: Mapping[str, str]) -> None: ...

    def remove_tags(self, image_id: str, keys: Sequence[str]) -> None: ...

    def images_in_use(self) -> dict[str, str]: ...  # image id -> what uses it

    def delete_image(self, image_id: str) -> list[str]: ...  # ids of everything deleted

    def promote(self, image_id: str, channel: str) -> None: ...  # the channel's current

    def launch_smoke_instance(
        self,
        image_id: str,
        *,
        name: str,
        public_key: str,
        user_data: str | None,
        tags: Mapping[str, str],
    ) -> str: ...

    # state in {"pending", "running", "failed"}
    def smoke_instance_state(self, instance_id: str) -> tuple[str, Endpoint | None]: ...

    def destroy_smoke_instance(self, instance_id: str) -> None: ...  # idempotent

    def packer_inputs(
        self,
        *,
        image: Image,
        location: str,
        bake_id: str,
        artifact_name: str,
        tags: Mapping[str, str],
        work_dir: Path,
    ) -> PackerInputs: ...
