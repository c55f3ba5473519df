"""Where the sandbox keeps its state and which addresses and ports it uses."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# The official Debian AMI publisher; the sandbox's base images carry the same owner so
# that catalog source filters are the ones production uses.
DEBIAN_OWNER_ID = "136693071363"
SANDBOX_ACCOUNT_ID = "123456789012"
# vcsim's login; it only ever listens on 127.0.0.1 and holds nothing real.
VCSIM_USERNAME = "bakery@vsphere.local"
VCSIM_PASSWORD = "sandbox-vcsim"
BUILD_SUBNET_TAG = ("bakery-build", "true")


@dataclass(frozen=True)
class RegionNetwork:
    region: str
    # Instances get their private IP from this loopback range, so SSH and smoke checks
    # reach each stand-in at its own address and nothing ever leaves 127.0.0.0/8.
    vpc_cidr: str
    subnet_cidr: str

    def __post_init__(self) -> None:
        if not ipaddress.ip_network(self.vpc_cidr).subnet_of(ipaddress.ip_network("127.0.0.0/8")):
            raise ValueError(f"sandbox VPC {self.vpc_cidr} must lie inside 127.0.0.0/8")


@dataclass(frozen=True)
class SandboxConfig:
    state_dir: Path
    rootfs_cache: Path
    moto_port: int
    apt_proxy_port: int
    regions: tuple[RegionNetwork, ...]
    arm_port: int = 5056
    # Azure VMs' addresses: a /24 of loopback next to the AWS regions' networks.
    azure_vm_network: str = "127.79.2.0/24"
    vcsim_port: int = 8989
    # Stand-ins of vSphere VMs get their guest IP from this loopback subnet.
    vsphere_subnet: str = "127.79.1.0/24"
    # A stand-in's ports reachable at its address: SSH, web, and the metrics agent the
    # catalog's base image serves (Prometheus node exporter).
    forwarded_ports: tuple[int, ...] = (22, 80, 443, 8080, 9100)
    default_user: str = "admin"
    poll_interval_seconds: float = 0.2
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    extra_packages: tuple[str, ...] = field(
        default=(
            "openssh-server",
            "sudo",
            "curl",
            "ca-certificates",
            "procps",
            "iproute2",
            "cloud-init",
            # debootstrap cannot pick a provider of a virtual package; cloud-init's
            # python3-cryptography needs this one.
            "python3-cffi-backend",
        )
    )

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def vcsim_url(self) -> str:
        return f"https://127.0.0.1:{self.vcsim_port}/sdk"

    @property
    def vsphere_dir(self) -> Path:
        """Stand-ins and captured templates of the vSphere side."""
        return self.state_dir / "vsphere"

    @property
    def arm_url(self) -> str:
        return f"https://127.0.0.1:{self.arm_port}"

    @property
    def instances_dir(self) -> Path:
        return self.state_dir / "instances"

    @property
    def images_dir(self) -> Path:
        return self.state_dir / "images"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env.sh"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "sandbox.log"


def _region_networks(octet: int) -> tuple[RegionNetwork, ...]:
    # Each region's VPC is a /16 of loopback, 127.<octet>.0.0 and up; a second sandbox
    # on the same machine (a second checkout) picks another octet so addresses never clash.
    if not 2 <= octet <= 250:
        raise ValueError(f"BAKERY_SANDBOX_NET_OCTET must be 2..250, not {octet}")
    return tuple(
        RegionNetwork(region, f"127.{octet + i}.0.0/16", f"127.{octet + i}.1.0/24")
        for i, region in enumerate(("us-east-1", "eu-west-1"))
    )


def load_config() -> SandboxConfig:
    octet = int(os.environ.get("BAKERY_SANDBOX_NET_OCTET", "77"))
    moto_port = int(os.environ.get("BAKERY_SANDBOX_MOTO_PORT", "5055"))
    return SandboxConfig(
        state_dir=Path(os.environ.get("BAKERY_SANDBOX_DIR", REPO_ROOT / ".sandbox")),
        rootfs_cache=Path(os.environ.get("BAKERY_SANDBOX_CACHE", "/var/cache/bakery-sandbox")),
        moto_port=moto_port,
        apt_proxy_port=int(os.environ.get("BAKERY_SANDBOX_APT_PROXY_PORT", "3142")),
        regions=_region_networks(octet),
        arm_port=int(os.environ.get("BAKERY_SANDBOX_ARM_PORT", str(moto_port + 1))),
        azure_vm_network=f"127.{octet + 2}.2.0/24",
        vcsim_port=int(os.environ.get("BAKERY_SANDBOX_VCSIM_PORT", "8989")),
        vsphere_subnet=f"127.{octet + 2}.1.0/24",
    )
