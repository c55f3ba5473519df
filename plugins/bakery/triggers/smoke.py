"""SmokeTestTrigger: waits for a smoke instance to boot and runs the image's checks.

The wait happens here, in the triggerer, so a booting instance holds no worker slot.
The private key of the smoke instance's one-off key pair travels in the trigger's
kwargs, which Airflow encrypts at rest; it only ever touches disk as a 0600 temp file.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from bakery.catalog import SmokeCheck
from bakery.hooks.aws import BakeryEc2Hook
from bakery.packer.redaction import Redactor
from bakery.smoke.checks import CheckResult, run_check
from bakery.smoke.hygiene import SCAN_TIMEOUT_SECONDS, HygieneInput, parse_findings, scan_script
from bakery.smoke.hygiene import verdict as hygiene_verdict
from bakery.smoke.transport import Endpoint, SshTransport, ssh_banner

BOOT_STATES_FAILED = {"shutting-down", "terminated", "stopping", "stopped"}
# Every catalog `ssh_interface`, and the field of DescribeInstances that holds its address.
ADDRESS_FIELDS = {
    "private_ip": "PrivateIpAddress",
    "public_ip": "PublicIpAddress",
    "private_dns": "PrivateDnsName",
    "public_dns": "PublicDnsName",
}


def resolve_endpoint(instance: dict[str, Any], *, reach: str, ssh_port: int) -> Endpoint | None:
    """Where checks reach the instance: `private_ip`, `public_ip`, `private_dns`,
    `public_dns`, or `tag:KEY`, whose value is `host` or `host:port` (for networks where
    SSH is port-forwarded). None while the instance has no such address yet."""
    if reach.startswith("tag:"):
        wanted = reach.removeprefix("tag:")
        value = next((t["Value"] for t in instance.get("Tags", []) if t["Key"] == wanted), None)
        if not value:
            return None
        host, _, port = value.rpartition(":") if ":" in value else (value, "", "")
        return Endpoint(host=host, ssh_port=int(port) if port else ssh_port)
    if reach not in ADDRESS_FIELDS:
        raise ValueError(
            f"cannot reach a smoke instance by {reach!r}:"
            f" expected one of {', '.join(ADDRESS_FIELDS)} or tag:KEY"
        )
    address = instance.get(ADDRESS_FIELDS[reach])
    return Endpoint(host=address, ssh_port=ssh_port) if address else None


class SmokeTestTrigger(BaseTrigger):
    def __init__(
        self,
        *,
        aws_conn_id: str,
        region_name: str,
        instance_id: str,
        key_name: str,
        ssh_user: str,
        private_key: str,
        checks: list[dict[str, Any]],
        reach: str = "private_ip",
        ssh_port: int = 22,
        timeout_seconds: float = 600,
        settle_seconds: float = 60,
        poll_interval: float = 2.0,
        hygiene: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.instance_id = instance_id
        self.key_name = key_name
        self.ssh_user = ssh_user
        self.private_key = private_key
        self.checks = checks
        self.reach = reach
        self.ssh_port = ssh_port
        self.timeout_seconds = timeout_seconds
        self.settle_seconds = settle_seconds
        self.poll_interval = poll_interval
        self.hygiene = hygiene

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "instance_id": self.instance_id,
                "key_name": self.key_name,
                "ssh_user": self.ssh_user,
                "private_key": self.private_key,
                "checks": self.checks,
                "reach": self.reach,
                "ssh_port": self.ssh_port,
                "timeout_seconds": self.timeout_seconds,
                "settle_seconds": self.settle_seconds,
                "poll_interval": self.poll_interval,
                "hygiene": self.hygiene,
            },
        )

    def _hook(self) -> BakeryEc2Hook:
        return BakeryEc2Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout_seconds
        endpoint, launched_at, problem = await self._wait_for_boot(deadline)
        if endpoint is None:
            yield TriggerEvent(
                {
                    **self._identity(),
                    "status": "timeout" if problem is None else "error",
                    "message": problem
                    or f"instance {self.instance_id} did not"
                    f" boot and answer SSH within {self.timeout_seconds:.0f}s",
                    "results": [],
                }
            )
            return
        results = await self._run_checks(
            endpoint, min(deadline, time.monotonic() + self.settle_seconds), launched_at
        )
        passed = all(result["passed"] for result in results)
        yield TriggerEvent(
            {
                **self._identity(),
                "status": "passed" if passed else "failed",
                "results": results,
                "endpoint": f"{endpoint.host}:{endpoint.ssh_port}",
            }
        )

    def _identity(self) -> dict[str, str]:
        # The operator's execute_complete needs these to clean up, whatever the outcome.
        return {"instance_id": self.instance_id, "key_name": self.key_name}

    async def _wait_for_boot(self, deadline: float) -> tuple[Endpoint | None, int, str | None]:
        """(where the instance answers SSH, its launch time in epoch seconds, a problem)."""
        hook = self._hook()
        while time.monotonic() < deadline:
            instance = await asyncio.to_thread(hook.describe_instance, self.instance_id)
            state = instance["State"]["Name"]
            if state in BOOT_STATES_FAILED:
                reason = instance.get("StateReason", {}).get("Message", "")
                problem = f"instance {self.instance_id} went {state} while booting {reason}"
                return None, 0, problem
            if state == "running":
                endpoint = resolve_endpoint(instance, reach=self.reach, ssh_port=self.ssh_port)
                if endpoint is not None and await ssh_banner(endpoint):
                    self.log.info(
                        "%s answers SSH at %s:%s",
                        self.instance_id,
                        endpoint.host,
                        endpoint.ssh_port,
                    )
                    return endpoint, int(instance["LaunchTime"].timestamp()), None
            await asyncio.sleep(self.poll_interval)
        return None, 0, None

    async def _run_checks(
        self, endpoint: Endpoint, settle_until: float, launched_at: int
    ) -> list[dict[str, Any]]:
        descriptor, key_path = tempfile.mkstemp(prefix="bakery-smoke-", suffix=".key")
        try:
            with os.fdopen(descriptor, "w") as key_file:
                key_file.write(self.private_key)
            transport = SshTransport(endpoint=endpoint, user=self.ssh_user, key_file=Path(key_path))
            results = []
            for raw in self.checks:
                check = SmokeCheck.model_validate(raw)
                result = await run_check(check, transport)
                while not result.passed and time.monotonic() < settle_until:
                    await asyncio.sleep(self.poll_interval)
                    result = await run_check(check, transport)
                results.append(self._report(result))
            if self.hygiene is not None:
                results.append(self._report(await self._scan_hygiene(transport, launched_at)))
            return results
        finally:
            Path(key_path).unlink(missing_ok=True)

    @property
    def cloud_init_id(self) -> str:
        """The instance id cloud-init records (EC2: the instance id)."""
        return self.instance_id

    async def _scan_hygiene(self, transport: SshTransport, launched_at: int) -> CheckResult:
        assert self.hygiene is not None
        scan = HygieneInput.from_dict(self.hygiene)
        script = scan_script(scan, instance_id=self.cloud_init_id, launched_at=launched_at)
        output = await transport.run_script_as_root(script, timeout=SCAN_TIMEOUT_SECONDS)
        return hygiene_verdict(parse_findings(output.output), exit_code=output.exit_code)

    def _report(self, result: CheckResult) -> dict[str, Any]:
        """Logs a verdict and returns it for the event, with any secret a command check's
        output printed masked in both."""
        redact = Redactor(self.hygiene.get("secrets", ()) if self.hygiene else ())
        result = replace(result, seen=redact(result.seen))
        self.log.info(result.line())
        return result.as_dict()

    async def on_kill(self) -> None:
        # A user marked the deferred task failed or cleared it: the instance must not
        # outlive the task. (Not on triggerer restarts: then the trigger just moves.)
        self.log.info("smoke task killed: terminating %s", self.instance_id)
        hook = self._hook()
        await asyncio.to_thread(hook.terminate_instance, self.instance_id)
        await asyncio.to_thread(hook.delete_key_pair, self.key_name)
