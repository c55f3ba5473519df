"""Shared by the lifecycle operators' cloud-adapter path (every cloud but AWS): deferring
to CloudOperationsTrigger for the long-running operations an adapter started."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

if TYPE_CHECKING:
    from bakery.operators._target import CloudTaskTarget


class CloudOperationError(RuntimeError):
    """A cloud's long-running operation failed or did not end in time."""


class CloudOperationsMixin(BaseOperator):
    catalog_path: str | None
    operation_poll_interval: float = 2.0

    def wait_for_operations(
        self, adapter: Any, found: CloudTaskTarget, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Return `result` now if the adapter started nothing; else defer until every
        operation ended, and `operations_done` returns it (or raises)."""
        from bakery.triggers.cloud import CloudOperationsTrigger

        operations = list(getattr(adapter, "started_operations", []))
        if not operations:
            return result
        adapter.started_operations.clear()
        self.log.info("%s: waiting for %d cloud operation(s)", found.target.label, len(operations))
        self.defer(
            trigger=CloudOperationsTrigger(
                catalog_path=self.catalog_path,
                image=found.target.image,
                cloud=found.target.cloud.value,
                location=found.target.region,
                operations=operations,
                result=result,
                poll_interval=self.operation_poll_interval,
            ),
            method_name="operations_done",
        )
        raise AssertionError("defer() returned")  # pragma: no cover

    def operations_done(self, context: Context, event: Mapping[str, Any]) -> dict[str, Any]:
        result = dict(event["result"])
        label = "/".join(str(result.get(k, "?")) for k in ("image", "cloud", "region"))
        context["bake_label"] = label  # type: ignore[typeddict-unknown-key]
        if event["status"] != "succeeded":
            details = "; ".join(event.get("failures") or [event.get("message", "")])
            raise CloudOperationError(f"{label}: cloud operation {event['status']}: {details}")
        return result
