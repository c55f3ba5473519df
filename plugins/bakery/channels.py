"""Where a channel's current image is published, and how promotion history is tagged."""

from __future__ import annotations

from collections.abc import Mapping


def channel_parameter(image: str, channel: str) -> str:
    """The SSM parameter launch templates and Terraform resolve, e.g. /bakery/web/stable."""
    return f"/bakery/{image}/{channel}"


# Promotions emit their `asset_uri` events through this alias; the audit DAG is
# scheduled on it, so a new image or cloud needs no change there.
PROMOTIONS_ALIAS = "bakery-promotions"


def asset_uri(cloud: str, image: str) -> str:
    # Airflow leaves `x-` schemes alone; any other scheme is looked up among the
    # providers' URI normalizers, which costs every DAG parse about 0.2 s.
    return f"x-bakery://{cloud}/{image}"


def tag_value(tags: list[Mapping[str, str]] | None, key: str) -> str | None:
    for tag in tags or []:
        if tag["Key"] == key:
            return tag["Value"]
    return None
