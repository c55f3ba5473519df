"""ReapOrphansOperator: remove builder and smoke leftovers that outlived their maximum age."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context

# DAG files import this module at parse time, so the AWS hook (boto3) is imported in
# execute.


class ReapOrphansOperator(BaseOperator):
    """Terminate bakery-tagged builder/smoke instances older than `max_age` and delete
    their key pairs, in every (connection, region) the catalog uses.

    A bake that lost its worker and its Packer process (power loss, node eviction)
    cannot clean up after itself; this runs at the start of every bake so such leftovers
    never live long.
    """

    template_fields: Sequence[str] = ("catalog_regions",)

    def __init__(
        self,
        *,
        catalog_regions: list[tuple[str, str]] | list[list[str]],
        max_age: timedelta = timedelta(hours=2),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.catalog_regions = catalog_regions
        self.max_age = max_age

    def execute(self, context: Context) -> list[str]:
        from bakery.hooks.aws import BakeryEc2Hook

        older_than = datetime.now(UTC) - self.max_age
        removed: list[str] = []
        for connection_id, region in self.catalog_regions:
            hook = BakeryEc2Hook(aws_conn_id=connection_id, region_name=region)
            reaped = hook.reap_orphans(older_than=older_than)
            for resource in reaped:
                self.log.warning(
                    "%s: removed orphan %s (older than %s)", region, resource, self.max_age
                )
            removed += reaped
        removed += self._reap_adapter_clouds(older_than)
        self.log.info("reaped %d orphan(s)", len(removed))
        return removed

    def _reap_adapter_clouds(self, older_than: datetime) -> list[str]:
        """Clouds behind an adapter (Azure): each catalog image's smoke VMs, per location.
        The catalog is read here, at run time, never when the DAG file is parsed."""
        from bakery.catalog import load_catalog
        from bakery.clouds.registry import adapter_for

        catalog = load_catalog()
        removed: list[str] = []
        for image in catalog.images:
            for cloud in image.targets.clouds():
                if cloud.value == "aws":
                    continue
                for location in getattr(image.targets, cloud.value).regions:
                    adapter: Any = adapter_for(
                        image, cloud, location, catalog_dir=catalog.include_dir
                    )
                    reaper = getattr(adapter, "reap_orphans", None)
                    for resource in reaper(older_than=older_than) if reaper else []:
                        self.log.warning(
                            "%s/%s: removed orphan %s (older than %s)",
                            cloud.value,
                            location,
                            resource,
                            self.max_age,
                        )
                        removed.append(resource)
        return removed
