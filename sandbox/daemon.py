"""The sandbox process: moto server, mirror proxy and the stand-in controller in one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from sandbox.aptproxy import AptProxy
from sandbox.azure.hypervisor import StandInHypervisor
from sandbox.azure.runtime import airflow_connection, start_arm_server
from sandbox.config import (
    BUILD_SUBNET_TAG,
    DEBIAN_OWNER_ID,
    VCSIM_PASSWORD,
    VCSIM_USERNAME,
    SandboxConfig,
)
from sandbox.controller import Controller
from sandbox.processes import stop_process
from sandbox.rootfs import ensure_base_rootfs
from sandbox.standin import kill_leftovers
from sandbox.vcsim import VcsimEndpoint, start_vcsim, vcsim_binary
from sandbox.vsphere import VsphereController

log = logging.getLogger(__name__)

BASE_AMI_ID = "ami-0deb12000000000a1"
BASE_AMI_NAME = "debian-12-amd64-{date}-1000"
BASE_AMI_AGE_DAYS = 5
MOTO_START_TIMEOUT_SECONDS = 60
SANDBOX_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}


def ec2_client(config: SandboxConfig, region: str) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=config.moto_url,
        region_name=region,
        aws_access_key_id=SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _base_amis_file(config: SandboxConfig) -> Path:
    created = datetime.now(UTC) - timedelta(days=BASE_AMI_AGE_DAYS)
    amis = [
        {
            "ami_id": BASE_AMI_ID,
            "name": BASE_AMI_NAME.format(date=created.strftime("%Y%m%d")),
            "description": "Debian 12 (bookworm) base image of the bakery sandbox",
            "owner_id": DEBIAN_OWNER_ID,
            "public": True,
            "virtualization_type": "hvm",
            "architecture": "x86_64",
            "state": "available",
            "root_device_type": "ebs",
            "root_device_name": "/dev/xvda",
            "creation_date": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
    ]
    path = config.state_dir / "base-amis.json"
    path.write_text(json.dumps(amis, indent=2))
    return path


def _require_free_port(port: int) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(
                f"port {port} on 127.0.0.1 is taken by another process; stop it or set"
                " BAKERY_SANDBOX_MOTO_PORT / BAKERY_SANDBOX_APT_PROXY_PORT"
            )


def _start_moto(config: SandboxConfig, amis_file: Path) -> subprocess.Popen[bytes]:
    _require_free_port(config.moto_port)
    env = {**os.environ, "MOTO_AMIS_PATH": str(amis_file), **SANDBOX_CREDENTIALS}
    log_file = (config.state_dir / "moto.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(config.moto_port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + MOTO_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited; see {config.state_dir / 'moto.log'}")
        try:
            urllib.request.urlopen(f"{config.moto_url}/moto-api/", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"moto server did not answer on {config.moto_url}")


def _seed_networks(config: SandboxConfig) -> None:
    key, value = BUILD_SUBNET_TAG
    for network in config.regions:
        ec2 = ec2_client(config, network.region)
        vpc = ec2.create_vpc(CidrBlock=network.vpc_cidr)["Vpc"]["VpcId"]
        ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=network.subnet_cidr,
            TagSpecifications=[
                {
                    "ResourceType": "subnet",
                    "Tags": [
                        {"Key": key, "Value": value},
                        {"Key": "Name", "Value": "bakery-sandbox-build"},
                    ],
                }
            ],
        )


def write_env_file(config: SandboxConfig, azure_endpoint: dict[str, Any]) -> None:
    connection = {
        "conn_type": "aws",
        "login": SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "password": SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": config.moto_url, "region_name": config.regions[0].region},
    }
    vsphere = {
        "conn_type": "vsphere",
        "host": "127.0.0.1",
        "port": config.vcsim_port,
        "login": VCSIM_USERNAME,
        "password": VCSIM_PASSWORD,
        # vcsim's certificate is self-signed; a real vCenter's is verified.
        "extra": {"verify_ssl": False},
    }
    lines = [
        f"export AIRFLOW_CONN_AWS_BAKERY='{json.dumps(connection)}'",
        f"export BAKERY_SANDBOX_MOTO_URL={config.moto_url}",
        f"export AIRFLOW_CONN_AZURE_BAKERY='{airflow_connection(azure_endpoint)}'",
        f"export BAKERY_SANDBOX_ARM_URL={config.arm_url}",
        f"export AIRFLOW_CONN_VSPHERE_BAKERY='{json.dumps(vsphere)}'",
        f"export BAKERY_SANDBOX_VCSIM_URL={config.vcsim_url}",
    ]
    config.env_file.write_text("\n".join(lines) + "\n")


class _StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it between steps. (An exception raised from
    the handler could be swallowed by a library's retry loop.)"""

    requested = False

    @classmethod
    def request(cls, signum: int, frame: object) -> None:
        cls.requested = True


def serve(config: SandboxConfig) -> None:
    """Run until SIGTERM/SIGINT; on the way out, stop every stand-in and moto."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.instances_dir.mkdir(exist_ok=True)
    kill_leftovers(config.instances_dir)
    kill_leftovers(config.vsphere_dir / "vms")
    # moto keeps its state in memory, so instance and image files of a former run
    # describe nothing that still exists.
    shutil.rmtree(config.instances_dir, ignore_errors=True)
    shutil.rmtree(config.images_dir, ignore_errors=True)
    shutil.rmtree(config.vsphere_dir, ignore_errors=True)
    config.instances_dir.mkdir()
    config.images_dir.mkdir()
    config.state_file.unlink(missing_ok=True)
    signal.signal(signal.SIGTERM, _StopFlag.request)
    signal.signal(signal.SIGINT, _StopFlag.request)

    base = ensure_base_rootfs(config)
    _require_free_port(config.apt_proxy_port)
    moto = _start_moto(config, _base_amis_file(config))
    vcsim = start_vcsim(
        vcsim_binary(config.rootfs_cache),
        VcsimEndpoint("127.0.0.1", config.vcsim_port, VCSIM_USERNAME, VCSIM_PASSWORD),
        config.state_dir / "vcsim.log",
    )
    proxy = AptProxy(
        port=config.apt_proxy_port,
        allowed_hosts={"deb.debian.org"},
        cache_dir=config.rootfs_cache / "apt-proxy-cache",
    )
    proxy.start()
    proxy_socket = config.state_dir / "apt-proxy.sock"
    bridge = subprocess.Popen(
        [
            "socat",
            f"UNIX-LISTEN:{proxy_socket},fork,unlink-early,mode=666",
            f"TCP:127.0.0.1:{config.apt_proxy_port}",
        ],
        stdin=subprocess.DEVNULL,
    )
    controller = Controller(
        config=config,
        clients={n.region: ec2_client(config, n.region) for n in config.regions},
        base_layers={BASE_AMI_ID: (base,)},
        apt_proxy_socket=proxy_socket,
    )
    _require_free_port(config.arm_port)
    hypervisor = StandInHypervisor(config=config, content={}, apt_proxy_socket=proxy_socket)
    arm, azure_endpoint = start_arm_server(
        port=config.arm_port,
        state_dir=config.state_dir / "azure",
        vm_network=config.azure_vm_network,
        listener=hypervisor,
    )
    # The base managed image boots the same Debian filesystem as the base AMI.
    hypervisor.content[str(azure_endpoint["base_image"]).lower()] = (base,)
    (config.state_dir / "azure" / "endpoint.json").write_text(json.dumps(azure_endpoint))
    vsphere = VsphereController(
        config=config,
        base_layers=(base,),
        apt_proxy_socket=proxy_socket,
        host="127.0.0.1",
        port=config.vcsim_port,
        username=VCSIM_USERNAME,
        password=VCSIM_PASSWORD,
    )
    try:
        _seed_networks(config)
        vsphere.seed()
        write_env_file(config, azure_endpoint)
        config.state_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "moto_url": config.moto_url,
                    "vcsim_url": config.vcsim_url,
                    "base_ami": BASE_AMI_ID,
                }
            )
        )
        log.info("sandbox ready: moto at %s, vcsim at %s", config.moto_url, config.vcsim_url)
        while not _StopFlag.requested:
            try:
                controller.step()
                arm.store.settle()  # Azure operations finish on time, polled or not
            except Exception:
                log.exception("controller step failed; retrying")
            try:
                vsphere.step()
            except Exception:
                log.exception("vSphere guest step failed; retrying")
            time.sleep(config.poll_interval_seconds)
        log.info("sandbox stopping")
    finally:
        arm.stop()
        hypervisor.shutdown()
        controller.shutdown()
        vsphere.shutdown()
        proxy.shutdown()
        bridge.terminate()
        stop_process(moto)
        stop_process(vcsim)
        config.state_file.unlink(missing_ok=True)
