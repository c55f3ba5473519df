"""Operator extra links: the console/portal/client URLs and the smoke log URL."""

from __future__ import annotations

import pytest

from bakery.links import (
    ImageConsoleLink,
    SmokeLogLink,
    aws_console_image_url,
    azure_portal_resource_url,
    image_console_url,
    task_log_url,
    vsphere_client_url,
)
from bakery.operators.packer import PackerBuildOperator
from bakery.operators.promote import PromoteImageOperator
from bakery.operators.smoke import SmokeTestOperator

AZURE_IMAGE = (
    "/subscriptions/0000-1111/resourceGroups/golden/providers/Microsoft.Compute"
    "/galleries/bakery/images/web/versions/2026.11.26"
)


def test_aws_console_url_names_region_and_ami() -> None:
    assert aws_console_image_url(region="eu-west-1", image_id="ami-0abc") == (
        "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1"
        "#ImageDetails:imageId=ami-0abc"
    )


def test_azure_portal_url_from_a_resource_id() -> None:
    assert azure_portal_resource_url(resource_id=AZURE_IMAGE) == (
        f"https://portal.azure.com/#/resource{AZURE_IMAGE}/overview"
    )
    assert azure_portal_resource_url(resource_id=AZURE_IMAGE, tenant="contoso.com").startswith(
        "https://portal.azure.com/#@contoso.com/resource/subscriptions/"
    )
    with pytest.raises(ValueError, match="not an Azure resource id"):
        azure_portal_resource_url(resource_id="web-image")


def test_vsphere_client_url_is_the_objects_urn() -> None:
    url = vsphere_client_url(server="vc.example.com", moref="vm-42", instance_uuid="c0ffee-1")
    assert url == (
        "https://vc.example.com/ui/app/vm;nav=v/urn:vmomi:VirtualMachine:vm-42:c0ffee-1/summary"
    )
    with pytest.raises(ValueError, match="managed object id"):
        vsphere_client_url(server="vc", moref="template-web", instance_uuid="x")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {"cloud": "aws", "region": "us-east-1", "image_id": "ami-1"},
            "https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1"
            "#ImageDetails:imageId=ami-1",
        ),
        (
            {"cloud": "azure", "image_id": AZURE_IMAGE},
            f"https://portal.azure.com/#/resource{AZURE_IMAGE}/overview",
        ),
        (
            {"cloud": "vsphere", "image_id": "vm-7", "server": "vc", "instance_uuid": "u"},
            "https://vc/ui/app/vm;nav=v/urn:vmomi:VirtualMachine:vm-7:u/summary",
        ),
        ({"cloud": "aws", "region": "us-east-1"}, ""),  # nothing baked: no link
        ({}, ""),
    ],
    ids=["aws", "azure", "vsphere", "no-image", "no-result"],
)
def test_image_console_url_per_cloud(result: dict[str, str], expected: str) -> None:
    assert image_console_url(result) == expected


def test_task_log_url_of_a_mapped_try() -> None:
    url = task_log_url(
        base_url="http://airflow.example.com/",
        dag_id="golden_image_bake",
        run_id="manual__2026-11-26T11:22:04+00:00",
        task_id="image_lifecycle.smoke_test",
        map_index=3,
        try_number=2,
    )
    assert url == (
        "http://airflow.example.com/dags/golden_image_bake/runs/"
        "manual__2026-11-26T11%3A22%3A04%2B00%3A00/tasks/image_lifecycle.smoke_test/mapped/3"
        "?try_number=2"
    )


def test_links_are_on_the_operators() -> None:
    def names(operator: type) -> set[str]:
        return {link.name for link in operator.operator_extra_links}

    assert names(PackerBuildOperator) == {ImageConsoleLink.name}
    assert names(PromoteImageOperator) == {ImageConsoleLink.name}
    assert names(SmokeTestOperator) == {SmokeLogLink.name}
