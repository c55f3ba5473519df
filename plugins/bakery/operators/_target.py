"""Shared by the lifecycle operators: the catalog entry a task works on."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakery.catalog import AwsTarget, BakeTarget, Catalog, Cloud, Image, load_catalog

if TYPE_CHECKING:
    from bakery.clouds.base import CloudAdapter


@dataclass(frozen=True)
class TaskTarget:
    target: BakeTarget
    image: Image
    aws: AwsTarget


def label_task(fields: Mapping[str, Any], context: MutableMapping[str, Any]) -> BakeTarget:
    """The target named by a target or bake-result dict, set as the `bake_label` the
    mapped task's map_index_template renders (`web/aws/us-east-1`). Every execution of a
    task needs it, a deferred task's resumption too."""
    target = BakeTarget.model_validate({key: fields[key] for key in ("image", "cloud", "region")})
    context["bake_label"] = target.label
    return target


def resolve_target(
    fields: Mapping[str, Any], *, catalog_path: str | None, context: MutableMapping[str, Any]
) -> TaskTarget:
    """The catalog image and AWS target named by a target or bake-result dict; also gives
    the mapped task its readable map index (`web/aws/us-east-1`)."""
    target = label_task(fields, context)
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


def skip_if_rejected(approval: Mapping[str, Any] | None, label: str) -> None:
    """Promote's own check of the approve task's answer (its return value): anything but
    Approve skips the promotion, and with it distribution and prune. Airflow 3.3's skip of
    the approver's downstream tasks does not hold inside a mapped task group: the rejected
    image was promoted anyway (tests/e2e/test_approval_gate.py)."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk.exceptions import AirflowSkipException

    if approval is None:
        return
    chosen = list(approval.get("chosen_options") or [])
    if chosen != [ApprovalOperator.APPROVE]:
        raise AirflowSkipException(f"{label}: promotion not approved (answer: {chosen})")


@dataclass(frozen=True)
class CloudTaskTarget:
    """A catalog entry for the cloud-adapter path (any cloud but AWS)."""

    target: BakeTarget
    image: Image
    catalog: Catalog

    @property
    def is_aws(self) -> bool:
        return self.target.cloud is Cloud.AWS

    def adapter(self) -> CloudAdapter:
        from bakery.clouds.registry import adapter_for

        return adapter_for(
            self.image, self.target.cloud, self.target.region, catalog_dir=self.catalog.include_dir
        )


def resolve_cloud_target(
    fields: Mapping[str, Any], *, catalog_path: str | None, context: MutableMapping[str, Any]
) -> CloudTaskTarget:
    """Like resolve_target, for any cloud."""
    target = label_task(fields, context)
    catalog = load_catalog(Path(catalog_path) if catalog_path else None)
    image = catalog.image(target.image)
    if getattr(image.targets, target.cloud.value) is None:
        raise ValueError(
            f"{target.label}: image {target.image!r} has no {target.cloud.value} target"
            " in the catalog"
        )
    return CloudTaskTarget(target=target, image=image, catalog=catalog)
