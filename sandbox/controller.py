"""Keeps stand-in VMs in step with the instances and images that moto knows about.

It plays the hypervisor: a running instance gets a booted stand-in, a stopped or
terminated one loses it, and a new image captures its source instance's filesystem
(the overlay's upper layer) so that later boots of that image see exactly that content.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.config import RegionNetwork, SandboxConfig
from sandbox.standin import BootSpec, StandIn

log = logging.getLogger(__name__)

CREATE_IMAGE_DESCRIPTION = re.compile(r"CreateImage\((?P<instance>i-[0-9a-f]+)\)")
LIVE_STATES = {"pending", "running"}
TERMINATED_GRACE_STEPS = 300  # keep a terminated instance's files ~1 min for late captures


@dataclass
class _Instance:
    standin: StandIn
    region: str
    layers: tuple[Path, ...]
    gone_for_steps: int = 0


class Controller:
    def __init__(
        self,
        *,
        config: SandboxConfig,
        clients: Mapping[str, Any],
        base_layers: Mapping[str, tuple[Path, ...]],
        apt_proxy_socket: Path,
    ) -> None:
        self.config = config
        self.clients = clients
        self.apt_proxy_socket = apt_proxy_socket
        self.image_layers: dict[str, tuple[Path, ...]] = dict(base_layers)
        self.instances: dict[str, _Instance] = {}
        self.networks = {network.region: network for network in config.regions}

    def step(self) -> None:
        for region, ec2 in self.clients.items():
            self._capture_new_images(region, ec2)
            self._reconcile_instances(region, ec2)

    def shutdown(self) -> None:
        for instance in self.instances.values():
            if instance.standin.running:
                instance.standin.stop()

    def image_content(self, image_id: str) -> tuple[Path, ...] | None:
        return self.image_layers.get(image_id)

    def _capture_new_images(self, region: str, ec2: Any) -> None:
        images = ec2.describe_images(Owners=["self"])["Images"]
        for image in images:
            if image["ImageId"] in self.image_layers or image.get("State") != "available":
                continue
            self._capture(region, ec2, image)

    def _capture(self, region: str, ec2: Any, image: Mapping[str, Any]) -> None:
        image_id = image["ImageId"]
        source = self._source_instance(ec2, image)
        instance = self.instances.get(source or "")
        if instance is None:
            log.warning(
                "image %s in %s has no captured content (source %s unknown)",
                image_id,
                region,
                source,
            )
            self.image_layers[image_id] = ()
            return
        layer = self.config.images_dir / image_id / "layer"
        layer.parent.mkdir(parents=True, exist_ok=True)
        # cp -a keeps the overlay whiteouts and xattrs, so deletions made while baking
        # stay deleted when this layer is a lower layer of a later boot.
        subprocess.run(["cp", "-a", str(instance.standin.upper), str(layer)], check=True)
        self.image_layers[image_id] = (layer, *instance.layers)
        (layer.parent / "READY").write_text(source or "")
        log.info("captured %s from %s into %s", image_id, source, layer)

    @staticmethod
    def _source_instance(ec2: Any, image: Mapping[str, Any]) -> str | None:
        for mapping in image.get("BlockDeviceMappings", []):
            snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
            if not snapshot_id:
                continue
            snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
            match = CREATE_IMAGE_DESCRIPTION.search(snapshot.get("Description", ""))
            if match:
                return match.group("instance")
        return None

    def _reconcile_instances(self, region: str, ec2: Any) -> None:
        seen: set[str] = set()
        for reservation in ec2.describe_instances()["Reservations"]:
            for described in reservation["Instances"]:
                instance_id = described["InstanceId"]
                seen.add(instance_id)
                live = described["State"]["Name"] in LIVE_STATES
                known = self.instances.get(instance_id)
                if live and known is not None and known.standin.crashed:
                    self._refuse(
                        ec2,
                        instance_id,
                        "the stand-in stopped by itself: " + known.standin.console_tail(),
                    )
                    known.standin.stop()
                elif live and (known is None or not known.standin.running):
                    self._boot(region, ec2, described, known)
                elif not live and known is not None:
                    self._retire(
                        instance_id, known, terminated=described["State"]["Name"] == "terminated"
                    )
        for instance_id, known in list(self.instances.items()):
            if known.region == region and instance_id not in seen:
                self._retire(instance_id, known, terminated=True)

    def _boot(
        self, region: str, ec2: Any, described: Mapping[str, Any], known: _Instance | None
    ) -> None:
        instance_id = described["InstanceId"]
        private_ip = described.get("PrivateIpAddress", "")
        network = self.networks.get(region)
        if not _inside(network, private_ip):
            self._refuse(
                ec2,
                instance_id,
                f"private IP {private_ip!r} is outside the sandbox"
                f" subnet {network.subnet_cidr if network else '(none)'}; launch it in"
                " the subnet tagged bakery-build=true",
            )
            return
        layers = known.layers if known else self.image_layers.get(described["ImageId"])
        if not layers:
            self._refuse(ec2, instance_id, f"image {described['ImageId']} has no content here")
            return
        spec = BootSpec(
            instance_id=instance_id,
            private_ip=private_ip,
            layers=layers,
            user=self.config.default_user,
            public_key=_public_key(ec2, described.get("KeyName")),
            user_data=_user_data(ec2, instance_id),
            forwarded_ports=self.config.forwarded_ports,
            apt_proxy_port=self.config.apt_proxy_port,
            apt_proxy_socket=self.apt_proxy_socket,
        )
        standin = StandIn(home=self.config.instances_dir / instance_id, spec=spec)
        standin.boot()
        self.instances[instance_id] = _Instance(standin=standin, region=region, layers=layers)

    def _retire(self, instance_id: str, known: _Instance, *, terminated: bool) -> None:
        if known.standin.running:
            known.standin.stop()
        if not terminated:
            return
        known.gone_for_steps += 1
        if known.gone_for_steps >= TERMINATED_GRACE_STEPS:
            shutil.rmtree(known.standin.home, ignore_errors=True)
            del self.instances[instance_id]

    @staticmethod
    def _refuse(ec2: Any, instance_id: str, reason: str) -> None:
        log.error("terminating %s: %s", instance_id, reason)
        ec2.terminate_instances(InstanceIds=[instance_id])


def _inside(network: RegionNetwork | None, address: str) -> bool:
    if network is None or not address:
        return False
    return ipaddress.ip_address(address) in ipaddress.ip_network(network.subnet_cidr)


def _user_data(ec2: Any, instance_id: str) -> str | None:
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    encoded = attribute.get("UserData", {}).get("Value")
    return base64.b64decode(encoded).decode(errors="replace") if encoded else None


def _public_key(ec2: Any, key_name: str | None) -> str | None:
    if not key_name:
        return None
    pairs = ec2.describe_key_pairs(KeyNames=[key_name], IncludePublicKey=True)["KeyPairs"]
    return pairs[0].get("PublicKey") if pairs else None
