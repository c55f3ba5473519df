"""vcsim for tests: the sandbox's own build of govmomi's vCenter simulator, started alone
on a free loopback port (no stand-ins, no root needed), plus helpers to shape its inventory."""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.config import load_config
from sandbox.processes import stop_process
from sandbox.vcsim import VcsimEndpoint, free_port, start_vcsim, vcsim_binary

# vcsim's default inventory (simulator.VPX()): one datacenter, a cluster with hosts.
DATACENTER = "DC0"
CLUSTER = "DC0_C0"
DATASTORE = "LocalDS_0"
SEED_VM = "DC0_C0_RP0_VM0"


@contextmanager
def running_vcsim(log_dir: Path) -> Generator[VcsimEndpoint]:
    endpoint = VcsimEndpoint("127.0.0.1", free_port(), "tester@vsphere.local", "vcsim-test-pw")
    process = start_vcsim(vcsim_binary(load_config().rootfs_cache), endpoint, log_dir / "vcsim.log")
    try:
        yield endpoint
    finally:
        stop_process(process)


def connection_uri(endpoint: VcsimEndpoint) -> str:
    """An AIRFLOW_CONN_* value for vcsim (JSON form)."""
    return json.dumps(
        {
            "conn_type": "vsphere",
            "host": endpoint.host,
            "port": endpoint.port,
            "login": endpoint.username,
            "password": endpoint.password,
            "extra": {"verify_ssl": False},
        }
    )


def wait(task: Any) -> Any:
    import time

    from pyVmomi import vim

    while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
        time.sleep(0.02)
    if task.info.error:
        raise RuntimeError(task.info.error.msg)
    return task.info.result


def make_template(
    content: Any,
    name: str,
    *,
    source: str = SEED_VM,
    notes: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Any:
    """A template cloned from `source` (a VM name in DC0's VM folder), with `notes` and
    advanced `settings` (extraConfig)."""
    from pyVmomi import vim

    datacenter = content.searchIndex.FindByInventoryPath(DATACENTER)
    seed = content.searchIndex.FindByInventoryPath(f"{DATACENTER}/vm/{source}")
    cluster = content.searchIndex.FindByInventoryPath(f"{DATACENTER}/host/{CLUSTER}")
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=cluster.resourcePool))
    vm = wait(seed.CloneVM_Task(folder=datacenter.vmFolder, name=name, spec=spec))
    if notes is not None or settings:
        extra = [vim.option.OptionValue(key=k, value=v) for k, v in (settings or {}).items()]
        wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation=notes, extraConfig=extra)))
    vm.MarkAsTemplate()
    return vm


def set_env(values: Mapping[str, str]) -> dict[str, str | None]:
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    return previous


def restore_env(previous: Mapping[str, str | None]) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
