"""`python -m sandbox up|down|status|env`: manage the local sandbox cloud."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time

from sandbox.config import SandboxConfig, load_config
from sandbox.daemon import serve

READY_TIMEOUT_SECONDS = 300


def _running_pid(config: SandboxConfig) -> int | None:
    try:
        pid = int(json.loads(config.state_file.read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError):
        return None
    return pid


def up(config: SandboxConfig) -> int:
    if _running_pid(config):
        print(f"sandbox already running: moto at {config.moto_url}")
        return 0
    config.state_dir.mkdir(parents=True, exist_ok=True)
    log = config.log_file.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"sandbox failed to start; see {config.log_file}", file=sys.stderr)
            print(config.log_file.read_text()[-3000:], file=sys.stderr)
            return 1
        if _running_pid(config):
            print(f"sandbox up: moto at {config.moto_url}; env in {config.env_file}")
            return 0
        time.sleep(0.5)
    process.terminate()
    print(
        f"sandbox not ready after {READY_TIMEOUT_SECONDS}s; see {config.log_file}", file=sys.stderr
    )
    return 1


def down(config: SandboxConfig) -> int:
    pid = _running_pid(config)
    if pid is None:
        print("sandbox not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(120):
        try:
            os.kill(pid, 0)
        except OSError:
            print("sandbox stopped")
            return 0
        time.sleep(0.25)
    print(f"sandbox (pid {pid}) did not stop", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env", "serve"])
    args = parser.parse_args()
    config = load_config()
    if args.command == "serve":
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        serve(config)
        return 0
    if args.command == "up":
        return up(config)
    if args.command == "down":
        return down(config)
    if args.command == "env":
        print(config.env_file.read_text() if _running_pid(config) else "", end="")
        return 0 if _running_pid(config) else 1
    running = _running_pid(config)
    print(f"sandbox running (pid {running})" if running else "sandbox stopped")
    return 0 if running else 3


if __name__ == "__main__":
    sys.exit(main())
