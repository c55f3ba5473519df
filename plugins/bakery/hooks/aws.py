"""All of bakery's EC2 calls: source AMI lookup, build subnet, bakery's own images."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from bakery.catalog import AwsSourceImage
from bakery.constants import TAG_BAKE_ID, TAG_MANAGED

DESCRIBE_PAGE_SIZE = 500


@dataclass(frozen=True)
class SourceImage:
    image_id: str
    name: str
    created: datetime


class BakeryEc2Hook(AwsBaseHook):
    """EC2 access for one region through an Airflow AWS connection."""

    def __init__(self, *, aws_conn_id: str, region_name: str) -> None:
        super().__init__(aws_conn_id=aws_conn_id, region_name=region_name, client_type="ec2")

    @property
    def endpoint_url(self) -> str | None:
        return self.conn_config.get_service_endpoint_url(service_name="ec2")

    def packer_environment(self) -> dict[str, str]:
        """Credentials for Packer's environment (never its command line)."""
        credentials = self.get_credentials(region_name=self.region_name)
        env = {
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_REGION": self.region_name or "",
            "AWS_DEFAULT_REGION": self.region_name or "",
        }
        if credentials.token:
            env["AWS_SESSION_TOKEN"] = credentials.token
        return env

    def resolve_source_image(self, source: AwsSourceImage) -> SourceImage:
        """The fixed AMI, or the newest available one matching the name filter and owners."""
        if source.ami_id:
            found = self.conn.describe_images(ImageIds=[source.ami_id])["Images"]
            what = source.ami_id
        else:
            found = self.conn.describe_images(
                Owners=list(source.owners),
                Filters=[
                    {"Name": "name", "Values": [source.name or ""]},
                    {"Name": "state", "Values": ["available"]},
                ],
            )["Images"]
            what = f"name {source.name!r} owned by {', '.join(source.owners)}"
        if not found:
            raise LookupError(f"no source AMI matches {what} in {self.region_name}")
        newest = max(found, key=lambda image: image["CreationDate"])
        return SourceImage(
            image_id=newest["ImageId"],
            name=newest.get("Name", ""),
            created=datetime.fromisoformat(newest["CreationDate"].replace("Z", "+00:00")),
        )

    def find_subnet(self, tags: Mapping[str, str]) -> str:
        """The build subnet carrying all `tags` (the one with most free addresses)."""
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        subnets = self.conn.describe_subnets(Filters=filters)["Subnets"]
        if not subnets:
            wanted = ", ".join(f"{k}={v}" for k, v in tags.items())
            raise LookupError(f"no subnet tagged {wanted} in {self.region_name}")
        return max(subnets, key=lambda s: s.get("AvailableIpAddressCount", 0))["SubnetId"]

    def iter_managed_images(
        self, *, extra_filters: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """bakery's own AMIs (by tag), page by page."""
        filters = [{"Name": f"tag:{TAG_MANAGED}", "Values": ["true"]}]
        filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in (extra_filters or {}).items()]
        paginator = self.conn.get_paginator("describe_images")
        for page in paginator.paginate(
            Owners=["self"], Filters=filters, PaginationConfig={"PageSize": DESCRIBE_PAGE_SIZE}
        ):
            yield from page["Images"]

    def find_baked_image(self, bake_id: str) -> dict[str, Any] | None:
        """An available image already made by this bake id (a retry adopts it)."""
        for image in self.iter_managed_images(extra_filters={TAG_BAKE_ID: bake_id}):
            if image.get("State") == "available":
                return image
        return None
