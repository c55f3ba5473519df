"""Shared by the lifecycle operators: the catalog entry a task works on."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakery.catalog import AwsTarget, BakeTarget, Image, load_catalog


@dataclass(frozen=True)
class TaskTarget:
    target: BakeTarget
    image: Image
    aws: AwsTarget


def resolve_target(
    fields: Mapping[str, Any], *, catalog_path: str | None, context: MutableMapping[str, Any]
) -> TaskTarget:
    """The catalog image and AWS target named by a target or bake-result dict; also gives
    the mapped task its readable map index (`web/aws/us-east-1`)."""
    target = BakeTarget.model_validate({key: fields[key] for key in ("image", "cloud", "region")})
    context["bake_label"] = target.label
    image = load_catalog(Path(catalog_path) if catalog_path else None).image(target.image)
    if image.targets.aws is None:
        raise ValueError(f"{target.label}: image {target.image!r} has no aws target in the catalog")
    return TaskTarget(target=target, image=image, aws=image.targets.aws)


def skip_if_promotion_off(context: Mapping[str, Any], label: str) -> None:
    """A run triggered with `skip_promote` bakes and smoke-tests only: approval, promotion
    and what follows them (distribution, prune) are skipped."""
    from airflow.sdk.exceptions import AirflowSkipException

    params = context.get("params") or {}
    if params.get("skip_promote"):
        raise AirflowSkipException(f"{label}: the run's skip_promote param is set; not promoting")
