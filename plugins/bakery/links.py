"""Operator extra links: from a bake or promote task to its image in the cloud's console,
and from a smoke test to its log.

The URL builders are pure. The links run in the worker when the task finishes (Airflow
stores each link as an XCom), read the task's result XCom (`image_id`, `region`, ...),
and give an empty link, which the UI hides, when there is nothing to show (a skipped or
failed bake). DAG files import this module through the operators: it stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

AZURE_PORTAL = "https://portal.azure.com"


def aws_console_image_url(*, region: str, image_id: str) -> str:
    """The EC2 console's page of one AMI."""
    return (
        f"https://{region}.console.aws.amazon.com/ec2/home?region={region}"
        f"#ImageDetails:imageId={quote(image_id)}"
    )


def azure_portal_resource_url(*, resource_id: str, tenant: str | None = None) -> str:
    """The Azure portal's page of one resource (a managed image or a gallery image
    version), by its ARM id `/subscriptions/.../providers/Microsoft.Compute/...`."""
    if not resource_id.startswith("/subscriptions/"):
        raise ValueError(f"not an Azure resource id: {resource_id!r}")
    directory = f"@{quote(tenant)}" if tenant else ""
    return f"{AZURE_PORTAL}/#{directory}/resource{quote(resource_id)}/overview"


def vsphere_client_url(*, server: str, moref: str, instance_uuid: str) -> str:
    """The vSphere Client's summary of one VM or template: its managed object id
    (`vm-123`) and the vCenter's instance UUID make the object's URN."""
    if not moref.startswith("vm-"):
        raise ValueError(f"not a virtual machine managed object id: {moref!r}")
    urn = f"urn:vmomi:VirtualMachine:{moref}:{instance_uuid}"
    return f"https://{server}/ui/app/vm;nav=v/{quote(urn, safe=':')}/summary"


def image_console_url(result: Mapping[str, Any]) -> str:
    """The console page of the image in a bake or promote result; empty when the result
    does not name one (or names a cloud without a console link)."""
    cloud, image_id = result.get("cloud"), result.get("image_id")
    if not image_id:
        return ""
    if cloud == "aws" and result.get("region"):
        return aws_console_image_url(region=result["region"], image_id=image_id)
    if cloud == "azure":
        return azure_portal_resource_url(resource_id=image_id, tenant=result.get("tenant_id"))
    if cloud == "vsphere" and result.get("server") and result.get("instance_uuid"):
        return vsphere_client_url(
            server=result["server"], moref=image_id, instance_uuid=result["instance_uuid"]
        )
    return ""


def task_log_url(
    *, base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> str:
    """The Airflow UI's log of one task instance try (the task instance page's first tab)."""
    path = f"dags/{quote(dag_id)}/runs/{quote(run_id)}/tasks/{quote(task_id)}"
    if map_index >= 0:
        path += f"/mapped/{map_index}"
    return f"{base_url.rstrip('/')}/{path}?try_number={try_number}"


def _result_of(ti_key: TaskInstanceKey) -> Mapping[str, Any]:
    from airflow.sdk.execution_time.xcom import XCom

    value = XCom.get_value(ti_key=ti_key, key="return_value")
    return value if isinstance(value, Mapping) else {}


class ImageConsoleLink(BaseOperatorLink):
    """`Image in console` on packer_build, promote and distribute."""

    name = "Image in console"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return image_console_url(_result_of(ti_key))


class SmokeLogLink(BaseOperatorLink):
    """`Smoke check log` on smoke_test: the try's log, where each check logs one line."""

    name = "Smoke check log"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk import conf

        return task_log_url(
            base_url=conf.get("api", "base_url", fallback="/"),
            dag_id=ti_key.dag_id,
            run_id=ti_key.run_id,
            task_id=ti_key.task_id,
            map_index=ti_key.map_index,
            try_number=ti_key.try_number,
        )
