"""The base root filesystem that the sandbox's base AMIs boot from.

Built once with debootstrap and cached by a hash of its recipe, like a cloud's
published base image; stand-ins never write into it (it is an overlay's lower layer).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

from sandbox.config import SandboxConfig

log = logging.getLogger(__name__)

RECIPE_VERSION = "4"
GUEST_SYSTEMCTL = Path(__file__).with_name("guest") / "systemctl"
GUEST_CLOUD_INIT = Path(__file__).with_name("guest") / "cloud-init.cfg"


def _recipe_hash(config: SandboxConfig) -> str:
    recipe = "|".join(
        [
            RECIPE_VERSION,
            config.suite,
            config.mirror,
            config.default_user,
            str(config.apt_proxy_port),
        ]
        + sorted(config.extra_packages)
        + [
            hashlib.sha256(guest.read_bytes()).hexdigest()
            for guest in (GUEST_SYSTEMCTL, GUEST_CLOUD_INIT)
        ]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def base_rootfs_path(config: SandboxConfig) -> Path:
    return config.rootfs_cache / f"debian-{config.suite}-{_recipe_hash(config)}"


def _chroot(root: Path, *command: str) -> None:
    subprocess.run(["chroot", str(root), *command], check=True, capture_output=True)


def _customize(root: Path, config: SandboxConfig) -> None:
    user = config.default_user
    _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", user)
    sudoers = root / "etc/sudoers.d/90-cloud-default-user"
    sudoers.write_text(f"{user} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    # Every stand-in reaches the Debian mirror through the sandbox's proxy, the way cloud
    # instances use a regional package mirror; the stand-in has no other network.
    (root / "etc/apt/apt.conf.d/01sandbox-mirror").write_text(
        f'Acquire::http::Proxy "http://127.0.0.1:{config.apt_proxy_port}/";\n'
    )
    # Stand-ins run without systemd; this shim starts enabled units at boot and answers
    # `systemctl is-active`, so smoke checks use the same command as on a real VM.
    shutil.copy2(GUEST_SYSTEMCTL, root / "usr/local/bin/systemctl")
    shutil.copy2(GUEST_CLOUD_INIT, root / "etc/cloud/cloud.cfg.d/90_bakery_sandbox.cfg")
    # Host keys and machine-id are per-instance identity: generated at first boot.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)


def ensure_base_rootfs(config: SandboxConfig) -> Path:
    """Return the cached base rootfs, building it with debootstrap (~35 s) when missing."""
    target = base_rootfs_path(config)
    config.rootfs_cache.mkdir(parents=True, exist_ok=True)
    with open(config.rootfs_cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = target.with_name(target.name + ".complete")
        if marker.exists():
            return target
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is missing: apt-get install debootstrap")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        log.info("building base rootfs %s with debootstrap (cached afterwards)", target)
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(config.extra_packages)}",
                config.suite,
                str(staging),
                config.mirror,
            ],
            check=True,
            capture_output=True,
        )
        _customize(staging, config)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        marker.write_text(_recipe_hash(config))
        return target
