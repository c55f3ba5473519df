"""The ARM server's state: resources by id (persisted) and long-running operations."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def arm_time(moment: datetime | None = None) -> str:
    """ARM's timestamp format, e.g. 2026-11-26T08:43:44.1234567+00:00."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def resource_type(resource_id: str) -> str:
    """`Microsoft.Compute/galleries/images/versions` for a version's id."""
    parts = resource_id.strip("/").split("/")
    provider = next(i for i, part in enumerate(parts) if part.lower() == "providers")
    tail = parts[provider + 2 :]
    return "/".join([parts[provider + 1], *tail[0::2]])


def parent_id(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 2)[0]


@dataclass
class Operation:
    """One long-running operation, finished by time (as in Azure, whether polled or not)."""

    operation_id: str
    location: str
    subscription: str
    done_at: float
    on_done: Callable[[bool], None]
    error: dict[str, Any] | None = None  # set: the operation fails with this error
    started: str = field(default_factory=arm_time)
    status: str = "InProgress"
    ended: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "startTime": self.started,
            "status": self.status,
            "name": self.operation_id,
        }
        if self.ended:
            body["endTime"] = self.ended
        if self.status == "Failed" and self.error:
            body["error"] = self.error
        return body


class Store:
    """Thread-safe resources (case-insensitive ids, as ARM's) and operations."""

    def __init__(self, state_file: Path | None) -> None:
        self.state_file = state_file
        self.lock = threading.RLock()
        self.resources: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.operations: dict[str, Operation] = {}
        if state_file is not None and state_file.exists():
            saved = json.loads(state_file.read_text())
            self.resources = saved.get("resources", {})
            self.tokens = set(saved.get("tokens", []))

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            document = json.dumps(
                {"resources": self.resources, "tokens": sorted(self.tokens)}, indent=1
            )
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(document)
        temporary.replace(self.state_file)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_id.lower().rstrip("/"))

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        self.resources[resource["id"].lower()] = resource
        return resource

    def delete(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.pop(resource_id.lower().rstrip("/"), None)

    def children(self, parent: str, child_type: str) -> list[dict[str, Any]]:
        prefix = parent.lower().rstrip("/") + "/" + child_type.lower() + "/"
        return [
            resource
            for key, resource in sorted(self.resources.items())
            if key.startswith(prefix) and "/" not in key[len(prefix) :]
        ]

    def of_type(self, subscription: str, full_type: str) -> Iterator[dict[str, Any]]:
        prefix = f"/subscriptions/{subscription.lower()}/"
        for key, resource in sorted(self.resources.items()):
            if key.startswith(prefix) and resource_type(key).lower() == full_type.lower():
                yield resource

    def start_operation(
        self,
        *,
        location: str,
        subscription: str,
        seconds: float,
        on_done: Callable[[bool], None],
        error: dict[str, Any] | None = None,
    ) -> Operation:
        operation = Operation(
            operation_id=str(uuid.uuid4()),
            location=location,
            subscription=subscription,
            done_at=time.monotonic() + seconds,
            on_done=on_done,
            error=error,
        )
        self.operations[operation.operation_id] = operation
        return operation

    def settle(self) -> bool:
        """Finish every operation that is due; True when something changed."""
        changed = False
        with self.lock:
            now = time.monotonic()
            for operation in self.operations.values():
                if operation.status == "InProgress" and operation.done_at <= now:
                    succeeded = operation.error is None
                    operation.status = "Succeeded" if succeeded else "Failed"
                    operation.ended = arm_time()
                    operation.on_done(succeeded)
                    changed = True
        if changed:
            self.save()
        return changed
