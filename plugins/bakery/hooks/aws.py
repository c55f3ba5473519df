"""All of bakery's EC2 calls: source AMI lookup, build subnet, bakery's own images."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from bakery.catalog import AwsSourceImage
from bakery.constants import TAG_BAKE_ID, TAG_MANAGED, TAG_ROLE

DESCRIBE_PAGE_SIZE = 500
# Source images are looked up this many ids per request, so one request stays small
# however many images the inventory names.
IMAGE_ID_BATCH = 200
# Packer 1.6.6 cannot tag its temporary key pairs; their name prefix is all there is.
ORPHAN_KEY_PREFIXES = ("bakery-smoke-", "packer_")


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

    def import_key_pair(self, name: str, public_key: str, tags: Mapping[str, str]) -> None:
        self.conn.import_key_pair(
            KeyName=name,
            PublicKeyMaterial=public_key.encode(),
            TagSpecifications=[{"ResourceType": "key-pair", "Tags": _tag_list(tags)}],
        )

    def delete_key_pair(self, name: str) -> None:
        self.conn.delete_key_pair(KeyName=name)

    def launch_instance(
        self,
        *,
        image_id: str,
        instance_type: str,
        key_name: str,
        subnet_id: str | None,
        tags: Mapping[str, str],
        user_data: str | None = None,
    ) -> str:
        """One instance from `image_id`; its volumes carry the same tags."""
        request: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "KeyName": key_name,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": _tag_list(tags)} for kind in ("instance", "volume")
            ],
        }
        if subnet_id:
            request["SubnetId"] = subnet_id
        if user_data:
            request["UserData"] = user_data
        return self.conn.run_instances(**request)["Instances"][0]["InstanceId"]

    def describe_instance(self, instance_id: str) -> dict[str, Any]:
        reservations = self.conn.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]

    def terminate_instance(self, instance_id: str) -> None:
        self.conn.terminate_instances(InstanceIds=[instance_id])

    def tag_resource(self, resource_id: str, tags: Mapping[str, str]) -> None:
        self.conn.create_tags(Resources=[resource_id], Tags=_tag_list(tags))

    def untag_resource(self, resource_id: str, keys: list[str]) -> None:
        self.conn.delete_tags(Resources=[resource_id], Tags=[{"Key": key} for key in keys])

    def delete_image(self, image: Mapping[str, Any]) -> list[str]:
        """Deregister an AMI and delete its snapshots; returns the snapshot ids deleted."""
        self.conn.deregister_image(ImageId=image["ImageId"])
        snapshots = [
            mapping["Ebs"]["SnapshotId"]
            for mapping in image.get("BlockDeviceMappings", [])
            if mapping.get("Ebs", {}).get("SnapshotId")
        ]
        for snapshot_id in snapshots:
            self.conn.delete_snapshot(SnapshotId=snapshot_id)
        return snapshots

    def images_in_use(self) -> dict[str, str]:
        """AMI id -> what uses it: instances that are not terminated, and the latest and
        default versions of launch templates (which auto scaling groups launch from)."""
        in_use: dict[str, str] = {}
        for page in self.conn.get_paginator("describe_instances").paginate(
            Filters=[
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                }
            ]
        ):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    in_use.setdefault(instance["ImageId"], f"instance {instance['InstanceId']}")
        for page in self.conn.get_paginator("describe_launch_templates").paginate():
            for template in page["LaunchTemplates"]:
                versions = self.conn.describe_launch_template_versions(
                    LaunchTemplateId=template["LaunchTemplateId"],
                    Versions=["$Latest", "$Default"],
                )["LaunchTemplateVersions"]
                for version in versions:
                    image_id = version.get("LaunchTemplateData", {}).get("ImageId")
                    if image_id:
                        in_use.setdefault(
                            image_id,
                            f"launch template"
                            f" {template['LaunchTemplateName']}"
                            f" v{version['VersionNumber']}",
                        )
        return in_use

    def describe_images_by_id(self, image_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """AMI id -> description, in batches of ids (source images, any owner).

        An `image-id` filter rather than `ImageIds`: ImageIds fails the whole call when one
        id no longer exists, and a deregistered source image must not hide the others. A
        filter skips deprecated images unless asked, and old bases are often deprecated.
        """
        wanted = sorted(set(image_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), IMAGE_ID_BATCH):
            batch = wanted[start : start + IMAGE_ID_BATCH]
            for page in self.conn.get_paginator("describe_images").paginate(
                Filters=[{"Name": "image-id", "Values": batch}], IncludeDeprecated=True
            ):
                found.update({image["ImageId"]: image for image in page["Images"]})
        return found

    def count_api_calls(self) -> Counter[str]:
        """A counter of this hook's EC2 API calls by operation, kept up to date from now
        on (retries of one call are not counted again)."""
        calls: Counter[str] = Counter()

        def _count(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        self.conn.meta.events.register("before-call.ec2", _count)
        return calls

    def reap_orphans(self, *, older_than: datetime) -> list[str]:
        """Terminate bakery's builder and smoke instances launched before `older_than`, and
        delete builder/smoke key pairs created before it. Returns what was removed."""
        removed: list[str] = []
        for page in self.conn.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": f"tag:{TAG_MANAGED}", "Values": ["true"]},
                {"Name": f"tag:{TAG_ROLE}", "Values": ["builder", "smoke"]},
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                },
            ]
        ):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    if instance["LaunchTime"] < older_than:
                        self.terminate_instance(instance["InstanceId"])
                        removed.append(instance["InstanceId"])
        for key in self.conn.describe_key_pairs()["KeyPairs"]:
            name = key["KeyName"]
            if name.startswith(ORPHAN_KEY_PREFIXES) and key.get("CreateTime", older_than) < (
                older_than
            ):
                self.delete_key_pair(name)
                removed.append(name)
        return removed


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


class BakerySsmHook(AwsBaseHook):
    """The SSM parameters that name each channel's current image."""

    def __init__(self, *, aws_conn_id: str, region_name: str) -> None:
        super().__init__(aws_conn_id=aws_conn_id, region_name=region_name, client_type="ssm")

    def put_image_parameter(self, name: str, image_id: str, description: str) -> int:
        """Point the parameter at `image_id`; returns its new version."""
        response = self.conn.put_parameter(
            Name=name,
            Value=image_id,
            Type="String",
            DataType="aws:ec2:image",
            Overwrite=True,
            Description=description,
        )
        return int(response["Version"])

    def get_parameter_value(self, name: str) -> str | None:
        try:
            return self.conn.get_parameter(Name=name)["Parameter"]["Value"]
        except self.conn.exceptions.ParameterNotFound:
            return None


def copy_image_to(
    *,
    aws_conn_id: str,
    source_region: str,
    image: Mapping[str, Any],
    region: str,
    tags: Mapping[str, str],
) -> str:
    """Start copying `image` into `region` (with its tags); returns the new AMI id."""
    target = BakeryEc2Hook(aws_conn_id=aws_conn_id, region_name=region)
    copied = target.conn.copy_image(
        SourceImageId=image["ImageId"],
        SourceRegion=source_region,
        Name=image.get("Name", image["ImageId"]),
        Description=f"bakery copy of {source_region}:{image['ImageId']}",
    )["ImageId"]
    target.tag_resource(copied, tags)
    return copied
