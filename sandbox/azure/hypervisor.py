"""Stand-in VMs for the ARM server's virtual machines, as the controller does for moto's
instances: a VM created from a gallery version boots the content of the managed image
the version was published from, with the VM's SSH key in the default user's
authorized_keys, at the VM's private (loopback) address."""

from __future__ import annotations

import base64
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.standin import BootSpec, StandIn

log = logging.getLogger(__name__)


class StandInHypervisor:
    def __init__(
        self,
        *,
        config: SandboxConfig,
        content: Mapping[str, tuple[Path, ...]],
        apt_proxy_socket: Path,
    ) -> None:
        self.config = config
        self.content = {key.lower(): layers for key, layers in content.items()}
        self.apt_proxy_socket = apt_proxy_socket
        self.standins: dict[str, StandIn] = {}
        self.home = config.state_dir / "azure-vms"

    def vm_started(self, vm: Mapping[str, Any], private_ip: str, content_id: str) -> None:
        layers = self.content.get(content_id.lower())
        if not layers:
            log.error("VM %s: image %s has no content in the sandbox", vm["name"], content_id)
            return
        profile = vm["properties"].get("osProfile", {})
        if profile.get("adminUsername") not in (None, self.config.default_user):
            log.warning(
                "VM %s asks for admin user %r; the sandbox's images only have %r",
                vm["name"],
                profile.get("adminUsername"),
                self.config.default_user,
            )
        keys = profile.get("linuxConfiguration", {}).get("ssh", {}).get("publicKeys", [])
        custom_data = profile.get("customData")  # base64, as Azure takes it
        home = self.home / vm["name"]
        shutil.rmtree(home, ignore_errors=True)  # a VM of the same name starts afresh
        standin = StandIn(
            home=home,
            spec=BootSpec(
                # What cloud-init on Azure records as the instance id: the VM's vmId.
                instance_id=vm["properties"]["vmId"],
                private_ip=private_ip,
                layers=layers,
                user=self.config.default_user,
                public_key=keys[0]["keyData"] if keys else None,
                user_data=base64.b64decode(custom_data).decode() if custom_data else None,
                forwarded_ports=self.config.forwarded_ports,
                apt_proxy_port=self.config.apt_proxy_port,
                apt_proxy_socket=self.apt_proxy_socket,
            ),
        )
        standin.boot()
        self.standins[vm["id"].lower()] = standin

    def vm_deleted(self, vm: Mapping[str, Any]) -> None:
        standin = self.standins.pop(vm["id"].lower(), None)
        if standin is not None:
            standin.stop()
            shutil.rmtree(standin.home, ignore_errors=True)

    def shutdown(self) -> None:
        for standin in self.standins.values():
            standin.stop()
        self.standins.clear()
