"""Triggers for the cloud-adapter path: waiting for a cloud's long-running operations
(Azure's Azure-AsyncOperation URLs), and the smoke test of an adapter's instance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from bakery.clouds.registry import adapter_from_catalog
from bakery.smoke.transport import Endpoint, ssh_banner
from bakery.triggers.smoke import SmokeTestTrigger


class CloudOperationsTrigger(BaseTrigger):
    """Polls each operation until it ends; one event: `succeeded`, or `failed` with every
    failed operation's error, or `timeout`. The task's result rides along in `result`."""

    def __init__(
        self,
        *,
        catalog_path: str | None,
        image: str,
        cloud: str,
        location: str,
        operations: list[str],
        result: dict[str, Any],
        timeout_seconds: float = 3600,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.catalog_path = catalog_path
        self.image = image
        self.cloud = cloud
        self.location = location
        self.operations = operations
        self.result = result
        self.timeout_seconds = timeout_seconds
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "catalog_path": self.catalog_path,
                "image": self.image,
                "cloud": self.cloud,
                "location": self.location,
                "operations": self.operations,
                "result": self.result,
                "timeout_seconds": self.timeout_seconds,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        adapter: Any = await asyncio.to_thread(
            adapter_from_catalog,
            self.catalog_path,
            image=self.image,
            cloud=self.cloud,
            location=self.location,
        )
        deadline = time.monotonic() + self.timeout_seconds
        failures: list[str] = []
        for url in self.operations:
            while True:
                state = await asyncio.to_thread(adapter.operation_state, url)
                if state.status != "InProgress":
                    break
                if time.monotonic() > deadline:
                    yield TriggerEvent(
                        {"status": "timeout", "result": self.result,
                         "message": f"operation still running after {self.timeout_seconds:.0f}s:"
                         f" {url.split('?')[0]}"}
                    )  # fmt: skip
                    return
                # Azure says when to ask again (Retry-After); never faster than our floor.
                await asyncio.sleep(max(self.poll_interval, state.retry_after or 0))
            if state.status != "Succeeded":
                failures.append(f"{url.split('?')[0]}: {state.status} {state.error or ''}")
        status = "failed" if failures else "succeeded"
        yield TriggerEvent({"status": status, "result": self.result, "failures": failures})


class CloudSmokeTestTrigger(SmokeTestTrigger):
    """SmokeTestTrigger for an adapter's instance: the boot wait asks the adapter (for
    Azure: the VM's provisioning state, then its NIC's address); the checks are the same."""

    def __init__(
        self,
        *,
        catalog_path: str | None,
        image: str,
        cloud: str,
        location: str,
        instance_id: str,
        ssh_user: str,
        private_key: str,
        checks: list[dict[str, Any]],
        ssh_port: int = 22,
        timeout_seconds: float = 600,
        settle_seconds: float = 60,
        poll_interval: float = 2.0,
        hygiene: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            aws_conn_id="",
            region_name=location,
            instance_id=instance_id,
            key_name="",
            ssh_user=ssh_user,
            private_key=private_key,
            checks=checks,
            ssh_port=ssh_port,
            timeout_seconds=timeout_seconds,
            settle_seconds=settle_seconds,
            poll_interval=poll_interval,
            hygiene=hygiene,
        )
        self.catalog_path = catalog_path
        self.image = image
        self.cloud = cloud
        self.location = location
        self._cloud_init_id = instance_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "catalog_path": self.catalog_path,
                "image": self.image,
                "cloud": self.cloud,
                "location": self.location,
                "instance_id": self.instance_id,
                "ssh_user": self.ssh_user,
                "private_key": self.private_key,
                "checks": self.checks,
                "ssh_port": self.ssh_port,
                "timeout_seconds": self.timeout_seconds,
                "settle_seconds": self.settle_seconds,
                "poll_interval": self.poll_interval,
                "hygiene": self.hygiene,
            },
        )

    def _adapter(self) -> Any:
        return adapter_from_catalog(
            self.catalog_path, image=self.image, cloud=self.cloud, location=self.location
        )

    def _identity(self) -> dict[str, str]:
        return {"instance_id": self.instance_id, "key_name": ""}

    async def _wait_for_boot(self, deadline: float) -> tuple[Endpoint | None, int, str | None]:
        """(where the instance answers SSH, its launch time in epoch seconds, a problem)."""
        adapter = await asyncio.to_thread(self._adapter)
        while time.monotonic() < deadline:
            state, endpoint = await asyncio.to_thread(
                adapter.smoke_instance_state, self.instance_id
            )
            if state == "failed":
                return None, 0, f"instance {self.instance_id} failed to provision"
            if state == "running" and endpoint is not None:
                endpoint = Endpoint(host=endpoint.host, ssh_port=self.ssh_port)
                if await ssh_banner(endpoint):
                    self.log.info("%s answers SSH at %s", self.instance_id, endpoint.host)
                    launched = getattr(adapter, "launch_time", None)
                    started = await asyncio.to_thread(launched, self.instance_id) if launched else 0
                    identity = getattr(adapter, "cloud_init_instance_id", None)
                    if identity is not None:
                        self._cloud_init_id = await asyncio.to_thread(identity, self.instance_id)
                    return endpoint, started, None
            await asyncio.sleep(self.poll_interval)
        return None, 0, None

    @property
    def cloud_init_id(self) -> str:
        # Azure: the VM's vmId, not its resource id (read while waiting for the boot).
        return self._cloud_init_id

    async def on_kill(self) -> None:
        self.log.info("smoke task killed: deleting %s", self.instance_id)
        adapter = await asyncio.to_thread(self._adapter)
        await asyncio.to_thread(adapter.destroy_smoke_instance, self.instance_id)
