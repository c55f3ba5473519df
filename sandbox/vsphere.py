"""Gives vcsim's VMs a guest: a stand-in VM per powered-on VM, as the AWS side does.

vcsim simulates vCenter's inventory but runs nothing, so this plays the hypervisor and
the guest's VMware Tools:
- a powered-on VM cloned (directly or through templates) from the sandbox's base
  template boots a stand-in at a loopback address of the vSphere subnet, which is then
  reported as the VM's guest IP (guest.net and guest.ipAddress, through the small
  endpoint sandbox/vcsim/main.go adds for this);
- the keys in the VM's `guestinfo.userdata` cloud-config land in the default user's
  authorized_keys, as cloud-init's VMware datasource does;
- a powered-off VM loses its stand-in; a VM turned into a template keeps its stand-in's
  filesystem as the template's content, so clones of it boot what was provisioned.
vCenter keeps no clone lineage on a VM, so the source of each clone comes from vCenter's
own VmClonedEvent.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import shutil
import ssl
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from sandbox.config import SandboxConfig
from sandbox.standin import BootSpec, StandIn

log = logging.getLogger(__name__)

DATACENTER = "DC0"
CLUSTER = "DC0_C0"
SEED_VM = "DC0_C0_RP0_VM0"  # in vcsim's default inventory; the base template's origin
BASE_TEMPLATE = "debian-12-base"
BASE_TEMPLATE_AGE_DAYS = 5
VM_PROPERTIES = ("name", "config.template", "runtime.powerState", "config.extraConfig")
FIRST_HOST_NUMBER = 10


@dataclass
class _Guest:
    standin: StandIn
    layers: tuple[Path, ...]
    address: str
    reported: bool = False


@dataclass
class VsphereController:
    config: SandboxConfig
    base_layers: tuple[Path, ...]
    apt_proxy_socket: Path
    host: str
    port: int
    username: str
    password: str
    template_layers: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    guests: dict[str, _Guest] = field(default_factory=dict)
    clone_sources: dict[str, str] = field(default_factory=dict)
    _service: Any = None

    # -- connection and seeding ----------------------------------------------------------

    @property
    def content(self) -> Any:
        if self._service is None:
            self._service = SmartConnect(
                host=self.host,
                port=self.port,
                user=self.username,
                pwd=self.password,
                disableSslCertValidation=True,
            )
        return self._service.RetrieveContent()

    def seed(self) -> None:
        """The base template every catalog image clones, with the sandbox's Debian."""
        index = self.content.searchIndex
        # vcsim starts with powered-on VMs that have no guest to give; off they stay.
        for vm in self.content.viewManager.CreateContainerView(
            self.content.rootFolder, [vim.VirtualMachine], True
        ).view:
            if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
                _wait(vm.PowerOffVM_Task())
        seed = index.FindByInventoryPath(f"{DATACENTER}/vm/{SEED_VM}")
        cluster = index.FindByInventoryPath(f"{DATACENTER}/host/{CLUSTER}")
        datacenter = index.FindByInventoryPath(DATACENTER)
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=cluster.resourcePool))
        base = _wait(seed.CloneVM_Task(folder=datacenter.vmFolder, name=BASE_TEMPLATE, spec=spec))
        published = datetime.now(UTC) - timedelta(days=BASE_TEMPLATE_AGE_DAYS)
        # What a publisher's notes would say; bakery reads the date as the base's age
        # (vcsim has no config.createDate).
        notes = f"Debian 12 base template\nbakery:baked-at={published:%Y-%m-%dT%H:%M:%SZ}"
        _wait(base.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation=notes)))
        base.MarkAsTemplate()
        self.template_layers[base._moId] = self.base_layers
        log.info("vSphere base template %s is %s", BASE_TEMPLATE, base._moId)

    # -- reconciling ---------------------------------------------------------------------

    def step(self) -> None:
        rows = list(self._vms())
        present = {row["moref"] for row in rows}
        for row in rows:
            moref = row["moref"]
            if row.get("config.template"):
                self._capture(moref, row["name"])
            elif row.get("runtime.powerState") == vim.VirtualMachinePowerState.poweredOn:
                self._run(moref, row)
            else:
                self._power_off(moref)
        for moref in [m for m in self.guests if m not in present]:
            self._power_off(moref)
            if moref not in self.template_layers:
                guest = self.guests.pop(moref)
                shutil.rmtree(guest.standin.home, ignore_errors=True)

    def shutdown(self) -> None:
        for guest in self.guests.values():
            if guest.standin.running:
                guest.standin.stop()
        if self._service is not None:
            Disconnect(self._service)

    def _capture(self, moref: str, name: str) -> None:
        guest = self.guests.get(moref)
        if guest is None or moref in self.template_layers:
            return
        if guest.standin.running:
            guest.standin.stop()
        self.template_layers[moref] = (guest.standin.upper, *guest.layers)
        log.info("captured template %s (%s) from its stand-in", name, moref)

    def _run(self, moref: str, row: dict[str, Any]) -> None:
        guest = self.guests.get(moref)
        if guest is None or not guest.standin.running:
            guest = self._boot(moref, row, guest)
            if guest is None:
                return
        if not guest.reported:
            self._report_ip(moref, guest.address)
            guest.reported = True

    def _boot(self, moref: str, row: dict[str, Any], known: _Guest | None) -> _Guest | None:
        layers = known.layers if known else self._layers_of_clone(moref)
        if layers is None:
            return None  # not a clone of the base template (vcsim's own VMs): no guest
        address = known.address if known else self._free_address()
        spec = BootSpec(
            instance_id=moref,
            private_ip=address,
            layers=layers,
            user=self.config.default_user,
            public_key=_authorized_keys(row.get("config.extraConfig") or []),
            # cloud-init in the guest reads it, as its VMware datasource would.
            user_data=_userdata(row.get("config.extraConfig") or []),
            forwarded_ports=self.config.forwarded_ports,
            apt_proxy_port=self.config.apt_proxy_port,
            apt_proxy_socket=self.apt_proxy_socket,
        )
        standin = StandIn(home=self.config.vsphere_dir / "vms" / moref, spec=spec)
        standin.boot()
        guest = _Guest(standin=standin, layers=layers, address=address)
        self.guests[moref] = guest
        log.info("booted guest of %s (%s) at %s", row["name"], moref, address)
        return guest

    def _power_off(self, moref: str) -> None:
        guest = self.guests.get(moref)
        if guest is not None and guest.standin.running:
            guest.standin.stop()
            guest.reported = False

    def _layers_of_clone(self, moref: str) -> tuple[Path, ...] | None:
        if moref not in self.clone_sources:
            source = self._clone_source(moref)
            if source is None:
                return None
            self.clone_sources[moref] = source
        return self.template_layers.get(self.clone_sources[moref])

    def _clone_source(self, moref: str) -> str | None:
        """The VM or template `moref` was cloned from, by vCenter's VmClonedEvent of it.
        (Filtered by the clone itself: an unfiltered query returns one short page.)"""
        manager = self.content.eventManager  # connects first
        vm = vim.VirtualMachine(moref, self._service._stub)
        events = manager.QueryEvents(
            filter=vim.event.EventFilterSpec(
                entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
                eventTypeId=["VmClonedEvent"],
            )
        )
        for event in events or []:
            if event.vm is not None and event.vm.vm._moId == moref and event.sourceVm:
                return str(event.sourceVm.vm._moId)
        return None

    def _free_address(self) -> str:
        taken = {guest.address for guest in self.guests.values()}
        subnet = ipaddress.ip_network(self.config.vsphere_subnet)
        for number, address in enumerate(subnet.hosts(), start=1):
            if number >= FIRST_HOST_NUMBER and str(address) not in taken:
                return str(address)
        raise RuntimeError(f"no free address left in {subnet}")

    def _report_ip(self, moref: str, address: str) -> None:
        """What VMware Tools does once the guest's network is up (see vcsim/main.go)."""
        query = urllib.parse.urlencode({"vm": moref, "ip": address})
        request = urllib.request.Request(
            f"https://{self.host}:{self.port}/bakery/guest-ip?{query}", method="POST"
        )
        login = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {login}")
        # vcsim's certificate is self-signed and it listens on loopback only.
        context = ssl._create_unverified_context()
        with urllib.request.urlopen(request, context=context, timeout=10):
            pass

    def _vms(self) -> Iterator[dict[str, Any]]:
        datacenter = self.content.searchIndex.FindByInventoryPath(DATACENTER)
        traverse = vmodl.query.PropertyCollector.TraversalSpec(
            name="folders", type=vim.Folder, path="childEntity", skip=False
        )
        traverse.selectSet = [vmodl.query.PropertyCollector.SelectionSpec(name="folders")]
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=datacenter.vmFolder, skip=True, selectSet=[traverse]
                )
            ],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(
                    type=vim.VirtualMachine, pathSet=list(VM_PROPERTIES)
                )
            ],
        )
        for item in self.content.propertyCollector.RetrieveContents([spec]) or []:
            row = {prop.name: prop.val for prop in item.propSet or []}
            row["moref"] = item.obj._moId
            yield row


def _userdata(extra_config: list[Any]) -> str | None:
    """The VM's guestinfo.userdata, decoded."""
    values = {option.key: option.value for option in extra_config}
    userdata = values.get("guestinfo.userdata")
    if not userdata:
        return None
    if values.get("guestinfo.userdata.encoding") == "base64":
        userdata = base64.b64decode(userdata).decode()
    return str(userdata)


def _authorized_keys(extra_config: list[Any]) -> str | None:
    """The ssh_authorized_keys of the VM's guestinfo.userdata cloud-config, if any."""
    userdata = _userdata(extra_config)
    if not userdata:
        return None
    document = yaml.safe_load(userdata) or {}
    keys = document.get("ssh_authorized_keys") or []
    return "\n".join(keys) if keys else None


def _wait(task: Any) -> Any:
    import time

    while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
        time.sleep(0.05)
    if task.info.state == vim.TaskInfo.State.error:
        raise RuntimeError(f"vcsim task failed: {task.info.error.msg}")
    return task.info.result
