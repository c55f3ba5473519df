"""A stand-in VM: an overlay root filesystem in its own namespaces, reached over SSH.

Each stand-in gets private network, PID, mount and UTS namespaces, so a service it runs
(nginx on port 80, say) can neither clash with another stand-in nor reach the host.
The host side forwards the instance's private IP (inside 127.0.0.0/8) to the stand-in
through Unix sockets, one per forwarded port; the mirror proxy is forwarded inwards
the same way. Mounts live in the stand-in's mount namespace and vanish with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class BootSpec:
    instance_id: str
    private_ip: str
    layers: tuple[Path, ...]  # lower layers, topmost first
    user: str
    public_key: str | None
    user_data: str | None
    forwarded_ports: tuple[int, ...]
    apt_proxy_port: int
    apt_proxy_socket: Path


def _init_script(spec: BootSpec, home: Path) -> str:
    merged = home / "merged"
    lower = ":".join(str(layer) for layer in spec.layers)
    hostname = "ip-" + spec.private_ip.replace(".", "-")
    q = shlex.quote
    lines = [
        "set -eu",
        f"mount -t overlay overlay -o lowerdir={lower},upperdir={home}/upper,workdir={home}/work"
        f" {q(str(merged))}",
        f"mount -t proc proc {merged}/proc",
        f"mount -t tmpfs -o mode=755 tmpfs {merged}/run",
        f"mkdir -p {merged}/run/sshd {merged}/dev/pts",
        f"mount -t devpts -o newinstance,ptmxmode=0666 devpts {merged}/dev/pts",
        f"touch {merged}/etc/hosts",
        f"mount --bind {home}/hosts {merged}/etc/hosts",
        f"hostname {hostname}",
        "ip link set lo up",
        f"socat TCP-LISTEN:{spec.apt_proxy_port},bind=127.0.0.1,reuseaddr,fork"
        f" UNIX-CONNECT:{spec.apt_proxy_socket} &",
    ]
    lines += [
        f"socat UNIX-LISTEN:{home}/sock/{port}.sock,fork,unlink-early TCP:127.0.0.1:{port} &"
        for port in spec.forwarded_ports
    ]
    lines += [
        # What systemd does at first boot: an empty machine-id gets a fresh one.
        f"[ -s {merged}/etc/machine-id ] ||"
        f" tr -d - < /proc/sys/kernel/random/uuid > {merged}/etc/machine-id",
        f"mkdir -p {merged}/run/bakery-seed && cp {home}/seed/* {merged}/run/bakery-seed/",
        f"if [ -x {merged}/usr/bin/cloud-init ]; then",
        # cloud-init's four boot stages, as systemd would run them, from the NoCloud seed
        # (sandbox/guest/cloud-init.cfg): hostname, launch key, user-data.
        *(
            f"  chroot {merged} cloud-init {stage} >> {home}/cloud-init.log 2>&1"
            f" || echo 'cloud-init {stage} failed (see cloud-init.log)'"
            for stage in ("init --local", "init", "modules --mode config", "modules --mode final")
        ),
    ]
    if spec.public_key:
        # An image without cloud-init gets no key on a real cloud either; the sandbox
        # still injects it, so that a smoke test can log in and report the missing tool.
        user_home = f"/home/{spec.user}"
        lines += [
            "else",
            "  echo 'no cloud-init in this image: the sandbox injects the launch key itself'",
            f"  chroot {merged} install -d -m 700 -o {spec.user} -g {spec.user} {user_home}/.ssh",
            f"  cat {home}/authorized_key >> {merged}{user_home}/.ssh/authorized_keys",
            f"  chroot {merged} chown {spec.user}: {user_home}/.ssh/authorized_keys",
            f"  chmod 600 {merged}{user_home}/.ssh/authorized_keys",
        ]
    lines += [
        "fi",
        f"chroot {merged} ssh-keygen -A >/dev/null",
        f"chroot {merged} /usr/local/bin/systemctl boot || echo 'some units failed to start'",
        f"chroot {merged} /usr/sbin/sshd -D -e -o ListenAddress=127.0.0.1 &",
        "echo stand-in booted",
        "wait",
    ]
    return "\n".join(lines) + "\n"


class StandIn:
    """Boots and stops one stand-in VM; its files live under `home`."""

    def __init__(self, *, home: Path, spec: BootSpec) -> None:
        self.home = home
        self.spec = spec
        self._processes: list[subprocess.Popen[bytes]] = []

    def _write_seed(self, hostname: str) -> None:
        """cloud-init's NoCloud seed: what EC2's metadata service would answer."""
        seed = self.home / "seed"
        seed.mkdir(parents=True, exist_ok=True)
        meta = {"instance-id": self.spec.instance_id, "local-hostname": hostname}
        if self.spec.public_key:
            meta["public-keys"] = [self.spec.public_key.strip()]
        # JSON is YAML, and needs no YAML library on the sandbox's side.
        (seed / "meta-data").write_text(json.dumps(meta) + "\n")
        (seed / "user-data").write_text(self.spec.user_data or "")
        (seed / "vendor-data").write_text("")

    @property
    def upper(self) -> Path:
        return self.home / "upper"

    def boot(self) -> None:
        for sub in ("upper", "work", "merged", "sock"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        hostname = "ip-" + self.spec.private_ip.replace(".", "-")
        (self.home / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {hostname}\n")
        if self.spec.public_key:
            (self.home / "authorized_key").write_text(self.spec.public_key.strip() + "\n")
        self._write_seed(hostname)
        (self.home / "init.sh").write_text(_init_script(self.spec, self.home))
        console = (self.home / "console.log").open("ab")
        self._processes.append(
            subprocess.Popen(
                [
                    "unshare",
                    "--net",
                    "--pid",
                    "--mount",
                    "--uts",
                    "--fork",
                    "--kill-child",
                    "--propagation",
                    "private",
                    "bash",
                    str(self.home / "init.sh"),
                ],
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        for port in self.spec.forwarded_ports:
            self._processes.append(
                subprocess.Popen(
                    [
                        "socat",
                        f"TCP-LISTEN:{port},bind={self.spec.private_ip},reuseaddr,fork",
                        f"UNIX-CONNECT:{self.home}/sock/{port}.sock",
                    ],
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        (self.home / "pids").write_text(" ".join(str(p.pid) for p in self._processes))
        log.info("booted stand-in %s at %s", self.spec.instance_id, self.spec.private_ip)

    @property
    def running(self) -> bool:
        return bool(self._processes) and self._processes[0].poll() is None

    @property
    def crashed(self) -> bool:
        """The stand-in's init ended by itself: the boot failed or everything inside died."""
        return bool(self._processes) and self._processes[0].poll() is not None

    def console_tail(self, lines: int = 5) -> str:
        try:
            text = (self.home / "console.log").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        for process in self._processes:
            _kill_group(process.pid)
        for process in self._processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning(
                    "stand-in %s process %s did not stop", self.spec.instance_id, process.pid
                )
        self._processes.clear()
        (self.home / "pids").unlink(missing_ok=True)
        log.info("stopped stand-in %s", self.spec.instance_id)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def kill_leftovers(instances_dir: Path) -> None:
    """Stop stand-ins a previous sandbox process left running (it may have been killed)."""
    for pids in instances_dir.glob("*/pids"):
        for pid in pids.read_text().split():
            _kill_group(int(pid))
        pids.unlink()
