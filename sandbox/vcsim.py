"""vcsim, govmomi's vCenter simulator: built from Debian's packages, run on 127.0.0.1.

Debian ships govmomi's `simulator` library (golang-github-vmware-govmomi-dev) but no
vcsim binary, so the sandbox builds the small main in `sandbox/vcsim/main.go` offline
in GOPATH mode, once, into a cache folder keyed by the source and toolchain. The login
reaches vcsim through its environment, never its command line.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

VCSIM_SOURCE = Path(__file__).with_name("vcsim") / "main.go"
GOVMOMI_GOPATH = Path("/usr/share/gocode")
GOVMOMI_PACKAGE = "golang-github-vmware-govmomi-dev"
APT_HINT = (
    "apt-get install golang-go golang-github-vmware-govmomi-dev (the Makefile's APT_PACKAGES)"
)
START_TIMEOUT_SECONDS = 30


class VcsimUnavailableError(RuntimeError):
    """Go or Debian's govmomi sources are missing, so vcsim cannot be built here."""


@dataclass(frozen=True)
class VcsimEndpoint:
    host: str
    port: int
    username: str
    password: str

    @property
    def sdk_url(self) -> str:
        return f"https://{self.host}:{self.port}/sdk"


def _toolchain_fingerprint() -> str:
    go = shutil.which("go")
    if go is None or not (GOVMOMI_GOPATH / "src/github.com/vmware/govmomi/simulator").is_dir():
        raise VcsimUnavailableError(
            f"cannot build vcsim: Go or govmomi sources missing; {APT_HINT}"
        )
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout
    package = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", GOVMOMI_PACKAGE], capture_output=True, text=True
    ).stdout
    return f"{version.strip()}|{GOVMOMI_PACKAGE}={package.strip()}"


def vcsim_binary(cache_dir: Path) -> Path:
    """The vcsim binary for this main.go and toolchain, built (~20-40 s) when missing."""
    recipe = VCSIM_SOURCE.read_bytes() + _toolchain_fingerprint().encode()
    target = cache_dir / f"vcsim-{hashlib.sha256(recipe).hexdigest()[:12]}" / "vcsim"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".vcsim.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="vcsim-build-") as build:
            package = Path(build) / "gopath/src/bakery/vcsim"
            package.mkdir(parents=True)
            shutil.copy2(VCSIM_SOURCE, package / "main.go")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": build,
                "GO111MODULE": "off",
                "GOPATH": f"{build}/gopath:{GOVMOMI_GOPATH}",
                "GOCACHE": str(cache_dir / "go-build-cache"),
                "GOFLAGS": "",
            }
            partial = target.with_name("vcsim.partial")
            result = subprocess.run(
                ["go", "build", "-o", str(partial), "."],
                cwd=package,
                env=env,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"building vcsim failed:\n{result.stderr[-3000:]}")
            partial.rename(target)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_vcsim(binary: Path, endpoint: VcsimEndpoint, log_file: Path) -> subprocess.Popen[bytes]:
    """Start vcsim and wait until its port answers; the caller terminates it."""
    with socket.socket() as probe:
        if probe.connect_ex((endpoint.host, endpoint.port)) == 0:
            raise RuntimeError(
                f"port {endpoint.port} on {endpoint.host} is taken; set BAKERY_SANDBOX_VCSIM_PORT"
            )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "VCSIM_LISTEN": f"{endpoint.host}:{endpoint.port}",
        "VCSIM_USERNAME": endpoint.username,
        "VCSIM_PASSWORD": endpoint.password,
    }
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vcsim exited at start; see {log_file}")
        with socket.socket() as probe:
            if probe.connect_ex((endpoint.host, endpoint.port)) == 0:
                return process
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"vcsim did not answer on {endpoint.host}:{endpoint.port}; see {log_file}")
