"""All of bakery's vCenter calls (pyvmomi), through an Airflow connection.

The connection (conn type `vsphere`, or any generic one) holds the vCenter host, port
(default 443), login and password; its extra may set `{"verify_ssl": false}` for a
self-signed certificate (the sandbox's vcsim). The password is read here only, and
reaches Packer through its environment, never a command line.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

TASK_POLL_SECONDS = 0.2
TASK_TIMEOUT_SECONDS = 1800.0


@dataclass(frozen=True)
class VcenterLogin:
    host: str
    port: int
    username: str
    password: str
    verify_ssl: bool

    @property
    def server(self) -> str:
        """`host` or `host:port`, the form Packer's vcenter_server takes."""
        return self.host if self.port == 443 else f"{self.host}:{self.port}"


class VsphereTaskError(RuntimeError):
    """A vCenter task ended in error."""


class VsphereHook(BaseHook):
    """One vCenter session per hook; every call bakery makes goes through here."""

    conn_name_attr = "vsphere_conn_id"
    default_conn_name = "vsphere_default"
    conn_type = "vsphere"
    hook_name = "VMware vSphere (bakery)"

    def __init__(self, *, vsphere_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.vsphere_conn_id = vsphere_conn_id
        self._service: Any = None
        self._field_keys: dict[str, int] | None = None

    def login(self) -> VcenterLogin:
        conn = self.get_connection(self.vsphere_conn_id)
        if not conn.host or not conn.login or not conn.password:
            raise ValueError(
                f"Airflow connection {self.vsphere_conn_id!r} needs host, login and password"
                " (the vCenter server and its user)"
            )
        extra = conn.extra_dejson
        return VcenterLogin(
            host=conn.host,
            port=int(conn.port or 443),
            username=conn.login,
            password=conn.password,
            verify_ssl=bool(extra.get("verify_ssl", True)),
        )

    def get_conn(self) -> Any:
        """The ServiceInstance's content (vim.ServiceInstanceContent), connected once."""
        if self._service is None:
            login = self.login()
            options: dict[str, Any] = {}
            if not login.verify_ssl:
                options["disableSslCertValidation"] = True
            else:
                options["sslContext"] = ssl.create_default_context()
            self._service = SmartConnect(
                host=login.host,
                port=login.port,
                user=login.username,
                pwd=login.password,
                **options,
            )
        return self._service.RetrieveContent()

    def close(self) -> None:
        if self._service is not None:
            Disconnect(self._service)
            self._service = None

    # -- inventory -------------------------------------------------------------------

    def datacenter(self, name: str) -> Any:
        content = self.get_conn()
        found = content.searchIndex.FindByInventoryPath(name)
        if not isinstance(found, vim.Datacenter):
            raise LookupError(f"vSphere datacenter {name!r} not found")
        return found

    def find_in_datacenter(self, datacenter: Any, kind: str, path: str) -> Any | None:
        """An object by its path under the datacenter's `vm`, `host`, `datastore` or
        `network` folder (`templates/debian-12`, `DC0_C0`), or None."""
        index = self.get_conn().searchIndex
        return index.FindByInventoryPath(f"{datacenter.name}/{kind}/{path.strip('/')}")

    def require(self, datacenter: Any, kind: str, path: str, what: str) -> Any:
        found = self.find_in_datacenter(datacenter, kind, path)
        if found is None:
            raise LookupError(f"vSphere {what} {path!r} not found in datacenter {datacenter.name}")
        return found

    def vm_folder(self, datacenter: Any, path: str) -> Any:
        if not path.strip("/"):
            return datacenter.vmFolder
        return self.require(datacenter, "vm", path, "folder")

    def vm(self, moref: str) -> Any:
        """A VM or template by its managed object id (`vm-42`); it may no longer exist."""
        self.get_conn()
        return vim.VirtualMachine(moref, self._service._stub)

    def vm_properties(self, datacenter: Any, properties: Sequence[str]) -> list[dict[str, Any]]:
        """`properties` of every VM and template in the datacenter, in one round trip.

        Walks the folder tree with a traversal spec rather than a container view: vcsim
        keeps a destroyed template in new views for a while (reading it then fails)."""
        content = self.get_conn()
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
                    type=vim.VirtualMachine, pathSet=list(properties)
                )
            ],
        )
        collector = content.propertyCollector
        result = collector.RetrievePropertiesEx(
            [spec], vmodl.query.PropertyCollector.RetrieveOptions()
        )
        rows: list[dict[str, Any]] = []
        while result is not None:
            for item in result.objects:
                row = {prop.name: prop.val for prop in item.propSet or []}
                row["moref"] = item.obj._moId
                rows.append(row)
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        return rows

    def vm_exists(self, moref: str) -> bool:
        try:
            self.vm(moref).name  # noqa: B018 (reading it is the check)
        except vmodl.fault.ManagedObjectNotFound:
            return False
        return True

    # -- custom attributes --------------------------------------------------------------

    def field_keys(self, names: Iterable[str] = (), *, create: bool = False) -> dict[str, int]:
        """Custom attribute name -> key for VMs; with `create`, defines missing `names`."""
        manager = self.get_conn().customFieldsManager
        if self._field_keys is None:
            self._field_keys = {
                field.name: field.key
                for field in manager.field or []
                if field.managedObjectType in (None, vim.VirtualMachine)
            }
        for name in names:
            if create and name not in self._field_keys:
                try:
                    field = manager.AddCustomFieldDef(name=name, moType=vim.VirtualMachine)
                    self._field_keys[name] = field.key
                except vim.fault.DuplicateName:
                    self._field_keys = None  # defined meanwhile by someone else: re-read
                    return self.field_keys(names, create=create)
        return dict(self._field_keys)

    def custom_values(self, values: Iterable[Any]) -> dict[str, str]:
        """A VM's `customValue` as attribute name -> value."""
        names = {key: name for name, key in self.field_keys().items()}
        found = {}
        for value in values or []:
            if value.key not in names:
                self._field_keys = None
                names = {key: name for name, key in self.field_keys().items()}
            if value.key in names:
                found[names[value.key]] = value.value
        return found

    def set_custom_values(self, entity: Any, values: Mapping[str, str]) -> None:
        manager = self.get_conn().customFieldsManager
        keys = self.field_keys(values, create=True)
        for name, value in values.items():
            manager.SetField(entity=entity, key=keys[name], value=value)

    # -- tasks ----------------------------------------------------------------------------

    def wait(self, task: Any, what: str, timeout: float = TASK_TIMEOUT_SECONDS) -> Any:
        deadline = time.monotonic() + timeout
        while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
            if time.monotonic() > deadline:
                raise TimeoutError(f"vCenter task {what} still running after {timeout:.0f}s")
            time.sleep(TASK_POLL_SECONDS)
        if task.info.state == vim.TaskInfo.State.error:
            fault = task.info.error
            message = getattr(fault, "msg", None) or type(fault).__name__
            raise VsphereTaskError(f"vCenter task {what} failed: {message}")
        return task.info.result
