"""The sandbox finds which template a VM was cloned from in vCenter's events (vcsim keeps
no lineage on the VM), however many clones came before (a query returns short pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.config import load_config
from sandbox.vcsim import VcsimEndpoint
from sandbox.vsphere import VsphereController, _authorized_keys
from tests.vcsim_support import DATACENTER, SEED_VM, make_template


def test_clone_source_of_the_fifteenth_clone(vcsim: VcsimEndpoint, vcenter: Any) -> None:
    first = make_template(vcenter, "lineage-root")
    clones = [make_template(vcenter, f"lineage-{i}", source="lineage-root") for i in range(14)]
    controller = VsphereController(
        config=load_config(),
        base_layers=(),
        apt_proxy_socket=Path("/nonexistent"),
        host=vcsim.host,
        port=vcsim.port,
        username=vcsim.username,
        password=vcsim.password,
    )
    try:
        seed = vcenter.searchIndex.FindByInventoryPath(f"{DATACENTER}/vm/{SEED_VM}")
        assert controller._clone_source(first._moId) == seed._moId
        assert {controller._clone_source(clone._moId) for clone in clones} == {first._moId}
    finally:
        controller.shutdown()


def test_authorized_keys_come_from_the_cloud_config() -> None:
    import base64

    from pyVmomi import vim

    document = (
        "#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA one\n  - ssh-rsa BBBB two\n"
    )
    options = [
        vim.option.OptionValue(
            key="guestinfo.userdata", value=base64.b64encode(document.encode()).decode()
        ),
        vim.option.OptionValue(key="guestinfo.userdata.encoding", value="base64"),
    ]
    assert _authorized_keys(options) == "ssh-ed25519 AAAA one\nssh-rsa BBBB two"
    assert _authorized_keys([]) is None
