"""A private moto server with chosen AMIs, for tests and benchmarks that need many images
with controlled creation dates (moto's API cannot set an image's creation date; its
`MOTO_AMIS_PATH` list can). Never the sandbox's server, never its port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from sandbox.processes import stop_process

# moto's default account: images with this owner are Owners=["self"].
ACCOUNT_ID = "123456789012"
DEBIAN_OWNER = "136693071363"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def aws_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ami(
    ami_id: str,
    name: str,
    created: datetime,
    tags: Mapping[str, str] | None = None,
    *,
    owner_id: str = ACCOUNT_ID,
    public: bool = False,
) -> dict[str, Any]:
    """One entry of a MOTO_AMIS_PATH list (the keyword arguments of moto's Ami)."""
    return {
        "ami_id": ami_id,
        "name": name,
        "description": name,
        "owner_id": owner_id,
        "public": public,
        "virtualization_type": "hvm",
        "architecture": "x86_64",
        "state": "available",
        "creation_date": aws_time(created),
        "root_device_type": "ebs",
        "root_device_name": "/dev/xvda",
        "tags": dict(tags or {}),
    }


def ami_id(number: int) -> str:
    return f"ami-{number:017x}"


@dataclass(frozen=True)
class MotoServer:
    url: str
    pid: int

    def client(self, service: str, region: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=region, **CREDENTIALS)

    def connection_uri(self, region: str = "us-east-1") -> str:
        """An Airflow AWS connection (JSON form) pointing every call at this server."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": CREDENTIALS["aws_access_key_id"],
                "password": CREDENTIALS["aws_secret_access_key"],
                "extra": {"endpoint_url": self.url, "region_name": region},
            }
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server(
    amis: Sequence[Mapping[str, Any]], workdir: Path, *, timeout: float = 30.0
) -> Generator[MotoServer, None, None]:
    """Start `python -m moto.server` on a free loopback port, holding exactly `amis` (in
    every region: moto loads the list into each region's backend), and stop it after."""
    workdir.mkdir(parents=True, exist_ok=True)
    amis_path = workdir / "amis.json"
    amis_path.write_text(json.dumps(list(amis)))
    port = free_port()
    env = {**os.environ, "MOTO_AMIS_PATH": str(amis_path)}
    with (workdir / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited: {(workdir / 'moto.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield MotoServer(url=f"http://127.0.0.1:{port}", pid=process.pid)
    finally:
        stop_process(process)


def keep_only_in_region(
    server: MotoServer, region: str, foreign_ids: Sequence[str], tag_key: str
) -> None:
    """moto puts every listed AMI in every region; remove `tag_key` from the images that
    belong elsewhere, in one call per 500 ids, so that a tag filter sees each image in
    its own region only."""
    ec2 = server.client("ec2", region)
    for start in range(0, len(foreign_ids), 500):
        ec2.delete_tags(Resources=list(foreign_ids[start : start + 500]), Tags=[{"Key": tag_key}])
