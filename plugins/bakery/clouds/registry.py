"""adapter_for: the cloud adapter of one catalog image in one location.

Adapters import their cloud SDKs, so each is imported only when asked for (DAG parsing
must stay cheap, and a worker without one cloud's SDK can still serve the others).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bakery.catalog import Cloud, Image
    from bakery.clouds.base import CloudAdapter


class NoAdapterError(LookupError):
    """The cloud has no adapter, or the image has no target in that cloud."""


def adapter_for(
    image: Image, cloud: Cloud, location: str, *, catalog_dir: Path | None = None
) -> CloudAdapter:
    """`catalog_dir`: where the catalog's relative template paths start (default include/)."""
    target = getattr(image.targets, cloud.value, None)
    if target is None:
        raise NoAdapterError(f"image {image.name!r} has no {cloud.value} target in the catalog")
    if cloud.value == "azure":
        from bakery.clouds.azure_gallery import AzureAdapter

        return AzureAdapter(image=image, target=target, location=location, catalog_dir=catalog_dir)
    if cloud.value == "vsphere":
        from bakery.clouds.vsphere import VsphereAdapter

        return VsphereAdapter(
            image=image, target=target, location=location, catalog_dir=catalog_dir
        )
    raise NoAdapterError(
        f"no cloud adapter for {cloud.value!r}: AWS runs through bakery.hooks.aws directly"
    )


def adapter_from_catalog(
    catalog_path: str | None, *, image: str, cloud: str, location: str
) -> CloudAdapter:
    """The adapter of a catalog image by name: for triggers, which get JSON kwargs only."""
    from bakery.catalog import Cloud, load_catalog

    catalog = load_catalog(Path(catalog_path) if catalog_path else None)
    return adapter_for(
        catalog.image(image), Cloud(cloud), location, catalog_dir=catalog.include_dir
    )
