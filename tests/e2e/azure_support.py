"""A private ARM sandbox server (python -m sandbox.azure) for tests of the Azure adapter
through the real azure-mgmt-compute client over HTTPS. No stand-in VMs: API only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ArmSandbox:
    endpoint: Mapping[str, Any]

    @property
    def base_url(self) -> str:
        return str(self.endpoint["base_url"])

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        import ssl

        context = ssl.create_default_context(cafile=self.endpoint["ca_bundle"])
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def inject(self, **fault: Any) -> None:
        self._control("POST", "/sandbox/faults", fault)

    def reset(self) -> None:
        self._control("DELETE", "/sandbox/faults")

    def requests(self) -> list[dict[str, Any]]:
        return self._control("GET", "/sandbox/requests")

    def patch(self, resource_id: str, patch: Mapping[str, Any]) -> Any:
        return self._control("POST", "/sandbox/patch", {"id": resource_id, "patch": patch})

    def connection(self) -> str:
        from sandbox.azure.runtime import airflow_connection

        return airflow_connection(dict(self.endpoint))


@contextmanager
def arm_sandbox(state_dir: Path, *, operation_seconds: float = 0.3) -> Generator[ArmSandbox]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.azure", "--port", str(port), "--state-dir",
         str(state_dir), "--operation-seconds", str(operation_seconds)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(state_dir.parent / f"arm-{port}.log").open("wb"),
    )  # fmt: skip
    endpoint_file = state_dir / "endpoint.json"
    try:
        deadline = time.monotonic() + 20
        while not endpoint_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the ARM sandbox server did not start (port {port})")
            time.sleep(0.1)
        yield ArmSandbox(json.loads(endpoint_file.read_text()))
    finally:
        stop_process(process)
