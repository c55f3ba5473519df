"""PromotionApprovalOperator: a human approves a promotion, for images that ask for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Context

# DAG files import this module at parse time: the catalog's pydantic models load in execute.


class PromotionApprovalOperator(ApprovalOperator):
    """Waits for Approve/Reject in the Airflow UI before a promotion, when the image's
    catalog entry sets `approval_required`; passes straight through otherwise.

    Reject skips the promotion (and the prune after it); the smoke-tested image stays.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "bake")

    def __init__(
        self, *, bake: dict[str, str], catalog_path: str | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("subject", "Promote a golden image?")
        super().__init__(**kwargs)
        self.bake = bake
        self.catalog_path = catalog_path

    def execute(self, context: Context) -> Any:
        from bakery.operators._target import resolve_cloud_target, skip_if_promotion_off

        found = resolve_cloud_target(self.bake, catalog_path=self.catalog_path, context=context)
        label, image = found.target.label, found.image
        skip_if_promotion_off(context, label)
        if not image.approval_required:
            self.log.info("%s: no approval required by the catalog; promoting", label)
            return {"chosen_options": [self.APPROVE], "approved_by": "catalog policy"}
        self.subject = f"Promote {self.bake['image_id']} as {label} ({image.channel})?"
        self.body = (
            f"**{label}**: image `{self.bake['image_id']}` (bake `{self.bake['bake_id']}`)"
            f" passed its smoke test. Approve to make it the current `{image.channel}` image;"
            " reject to keep the current one."
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        # The answer arrives in a new task execution, which renders the map index again.
        from bakery.operators._target import label_task

        label_task(self.bake, context)  # type: ignore[arg-type]
        return super().execute_complete(context, event)
