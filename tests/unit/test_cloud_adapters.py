"""The cloud-adapter path's pure parts: Azure catalog targets, version names, the
adapter registry, and the triggers' serialization."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from bakery.catalog import AzureTarget, Catalog, Cloud, Image
from bakery.clouds.azure_gallery import version_name
from bakery.clouds.registry import NoAdapterError, adapter_for
from bakery.triggers.cloud import CloudOperationsTrigger, CloudSmokeTestTrigger

SUBNET = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/b"
)
BASE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/base"


def azure(**overrides: Any) -> dict[str, Any]:
    return {
        "locations": ["westeurope"],
        "resource_group": "rg",
        "gallery": "g",
        "subnet_id": SUBNET,
        "source": {"publisher": "Debian", "offer": "debian-12", "sku": "12"},
        **overrides,
    }


def test_azure_locations_are_the_fan_outs_regions() -> None:
    image = Image.model_validate(
        {"name": "web", "owners": ["t"], "template": "t.pkr.hcl",
         "targets": {"azure": azure(locations=["westeurope", "northeurope"])}}
    )  # fmt: skip
    catalog = Catalog(images=(image,))

    assert [t.label for t in catalog.bake_targets()] == [
        "web/azure/westeurope",
        "web/azure/northeurope",
    ]
    assert [t.label for t in catalog.bake_targets(clouds=["azure"], regions=["northeurope"])] == [
        "web/azure/northeurope"
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"source": {"image_id": BASE, "publisher": "Debian", "offer": "o", "sku": "s"}},
         "set either image_id, or publisher, offer and sku"),
        ({"source": {"publisher": "Debian"}}, "set either image_id, or publisher, offer and sku"),
        ({"bake": "register-source"}, "register-source needs source.image_id"),
        ({"locations": ["West Europe"]}, "String should match pattern"),
        ({"locations": ["westeurope", "westeurope"]}, "locations listed twice: westeurope"),
        ({"source": {"image_id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft."
                                 "Compute/galleries/g/images/d/versions/1.0.0"}},
         "String should match pattern"),
    ],
)  # fmt: skip
def test_bad_azure_targets_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AzureTarget.model_validate(azure(**overrides))


def test_version_names_are_integers_and_skip_taken_ones() -> None:
    started = datetime(2026, 1, 4, 8, 3, 9, tzinfo=UTC)

    assert version_name(started) == "2026.104.80309"
    assert version_name(started, ["2026.104.80309", "2026.104.80310"]) == "2026.104.80311"


def test_the_registry_refuses_a_cloud_the_image_does_not_name() -> None:
    image = Image.model_validate(
        {"name": "web", "owners": ["t"], "template": "t.pkr.hcl", "targets": {"azure": azure()}}
    )

    assert type(adapter_for(image, Cloud.AZURE, "westeurope")).__name__ == "AzureAdapter"
    with pytest.raises(NoAdapterError, match="no aws target"):
        adapter_for(image, Cloud.AWS, "us-east-1")


@pytest.mark.parametrize(
    ("trigger_class", "kwargs"),
    [
        (CloudOperationsTrigger,
         {"catalog_path": "/c.yaml", "image": "web", "cloud": "azure", "location": "westeurope",
          "operations": ["https://arm/op/1"], "result": {"image_id": "x"},
          "timeout_seconds": 60.0, "poll_interval": 1.0}),
        (CloudSmokeTestTrigger,
         {"catalog_path": None, "image": "web", "cloud": "azure", "location": "westeurope",
          "instance_id": "/subscriptions/s/vm", "ssh_user": "admin", "private_key": "KEY",
          "checks": [{"name": "n", "file": "/f"}], "ssh_port": 2222, "timeout_seconds": 60.0,
          "settle_seconds": 5.0, "poll_interval": 1.0, "hygiene": {"launch_key": "k"}}),
    ],
)  # fmt: skip
def test_cloud_triggers_serialize_every_init_parameter(
    trigger_class: type, kwargs: dict[str, Any]
) -> None:
    classpath, serialized = trigger_class(**kwargs).serialize()

    assert classpath == f"bakery.triggers.cloud.{trigger_class.__name__}"
    assert serialized == kwargs
    parameters = set(inspect.signature(trigger_class.__init__).parameters) - {"self"}
    assert set(serialized) == parameters
    assert trigger_class(**serialized).serialize() == (classpath, serialized)
