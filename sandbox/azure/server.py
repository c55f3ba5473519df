"""The ARM-shaped HTTPS server (stdlib only, plus the certificate from tls.py).

ARM routes need a bearer token from this server's own token endpoint
(`/{tenant}/oauth2/v2.0/token`, client credentials), so a client authenticates exactly as
against Microsoft Entra ID with the authority pointed here. Writes are long-running
operations: 201/200 (PUT, PATCH) or 202 (DELETE) with `Azure-AsyncOperation` and
`Retry-After`; the operation's status route answers InProgress, then Succeeded or Failed
with an error body, and the resource's `provisioningState` follows.

Test-only control routes under `/sandbox/` (no token): `POST /sandbox/faults` queues a
fault for requests matching a method and path fragment (`throttle`: 429 with Retry-After;
`fail_operation`: the operation started by the request fails; `error`: an immediate error
status), `DELETE /sandbox/faults` clears them, `GET /sandbox/requests` lists what was
served, `POST /sandbox/patch` merges properties into a resource (e.g. an old
`publishedDate`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import ssl
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from sandbox.azure.store import Store, arm_time, parent_id, resource_type

log = logging.getLogger(__name__)

VERSION_NAME = re.compile(r"^\d{1,9}\.\d{1,9}\.\d{1,9}$")
PAGE_SIZE = 50
VERSIONS = "microsoft.compute/galleries/images/versions"
VMS = "microsoft.compute/virtualmachines"
IMAGES = "microsoft.compute/images"


class ArmError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


class VmListener(Protocol):
    """The sandbox's hypervisor: boots and stops a stand-in for each VM."""

    def vm_started(self, vm: Mapping[str, Any], private_ip: str, content_id: str) -> None: ...

    def vm_deleted(self, vm: Mapping[str, Any]) -> None: ...


@dataclass
class Fault:
    method: str
    path_contains: str
    kind: str  # throttle | fail_operation | error
    times: int = 1
    retry_after: int = 1
    status: int = 500
    code: str = "InternalServerError"
    message: str = "injected by the sandbox"


@dataclass
class ServerSettings:
    client_id: str
    client_secret: str
    tenant_id: str
    operation_seconds: float = 0.5
    vm_network: str = "127.122.2.0/24"
    listener: VmListener | None = None
    faults: list[Fault] = field(default_factory=list)


class ArmServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        port: int,
        *,
        cert: Path,
        key: Path,
        store: Store,
        settings: ServerSettings,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.store = store
        self.settings = settings
        self.requests: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="arm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.store.lock:
            for fault in self.settings.faults:
                if fault.method == method and fault.path_contains.lower() in path.lower():
                    fault.times -= 1
                    if fault.times <= 0:
                        self.settings.faults.remove(fault)
                    return fault
        return None


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


class _Handler(BaseHTTPRequestHandler):
    server: ArmServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        log.debug("arm: " + format, *args)

    # -- plumbing -------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._dispatch("GET")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        if "json" in (self.headers.get("Content-Type") or "json"):
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise ArmError(400, "InvalidRequestContent", f"not JSON: {exc}") from exc
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def _send(
        self, status: int, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        status = 500
        try:
            body = self._body()
            control = url.path.startswith("/sandbox/")
            fault = None if control else self.server.take_fault(method, url.path)
            if fault is not None and fault.kind == "throttle":
                raise ArmError(
                    429,
                    "TooManyRequests",
                    "The request is being throttled as the limit has been reached for"
                    " operation type - Read/Write. (injected by the sandbox)",
                    {"Retry-After": str(fault.retry_after)},
                )
            if fault is not None and fault.kind == "error":
                raise ArmError(fault.status, fault.code, fault.message)
            status, response, headers = self._route(method, url.path, query, body, fault)
            self._send(status, response, headers)
        except ArmError as exc:
            status = exc.status
            self._send(exc.status, _error_body(exc.code, exc.message), exc.headers)
        except Exception as exc:  # a bug here must show as Azure's 500, not a dropped socket
            log.exception("arm: %s %s failed", method, self.path)
            status = 500
            self._send(500, _error_body("InternalServerError", f"{type(exc).__name__}: {exc}"))
        finally:
            with self.server.store.lock:
                self.server.requests.append({"method": method, "path": url.path, "status": status})

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, fault: Fault | None
    ) -> tuple[int, Any, dict[str, str]]:
        if path.startswith("/sandbox/"):
            return self._control(method, path, body)
        parts = [part for part in path.split("/") if part]
        if parts[-2:] == ["oauth2", "token"] or path.endswith("/oauth2/v2.0/token"):
            return self._token(body)
        if path.endswith("/.well-known/openid-configuration"):
            return self._openid(parts[0])
        if not parts or parts[0].lower() != "subscriptions":
            raise ArmError(404, "NotFound", f"no route {path}")
        self._authorize()
        self.server.store.settle()
        if len(parts) == 8 and parts[6].lower() == "operations":
            return self._operation(parts[7], monitor=False)
        if len(parts) == 8 and parts[6].lower() == "operationresults":
            return self._operation(parts[7], monitor=True)
        return _Resources(self.server, parts, query, fault).handle(method, body)

    # -- identity ---------------------------------------------------------------------------

    def _openid(self, tenant: str) -> tuple[int, Any, dict[str, str]]:
        base = f"{self.server.base_url}/{tenant}"
        return (
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_types_supported": ["code", "id_token", "token"],
                "tenant_region_scope": "EU",
            },
            {},
        )

    def _token(self, form: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        settings = self.server.settings
        if form.get("client_id") != settings.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), settings.client_secret
        ):
            return (
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
                {},
            )
        token = secrets.token_urlsafe(32)
        with self.server.store.lock:
            self.server.store.tokens.add(token)
        self.server.store.save()
        return (
            200,
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
             "access_token": token},
            {},
        )  # fmt: skip

    def _authorize(self) -> None:
        header = self.headers.get("Authorization") or ""
        token = header.removeprefix("Bearer ").strip()
        if not header.startswith("Bearer ") or token not in self.server.store.tokens:
            raise ArmError(
                401,
                "AuthenticationFailed" if header else "AuthenticationFailedMissingToken",
                "Authentication failed. The 'Authorization' header is missing or its"
                " token was not issued by this server.",
                {"WWW-Authenticate": 'Bearer authorization_uri="", error="invalid_token"'},
            )

    # -- operations and control -----------------------------------------------------------

    def _operation(self, operation_id: str, *, monitor: bool) -> tuple[int, Any, dict[str, str]]:
        operation = self.server.store.operations.get(operation_id)
        if operation is None:
            raise ArmError(404, "NotFound", f"operation {operation_id} not found")
        if monitor:
            if operation.status == "InProgress":
                return 202, None, {"Retry-After": "1", "Location": self.path}
            if operation.status == "Failed" and operation.error:
                raise ArmError(400, operation.error["code"], operation.error["message"])
            return 204, None, {}
        waiting = operation.status == "InProgress"
        return 200, operation.body(), {"Retry-After": "1"} if waiting else {}

    def _control(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        server = self.server
        if path == "/sandbox/faults" and method == "POST":
            with server.store.lock:
                server.settings.faults.append(Fault(**body))
            return 201, {"queued": len(server.settings.faults)}, {}
        if path == "/sandbox/faults" and method == "DELETE":
            with server.store.lock:
                server.settings.faults.clear()
                server.requests.clear()
            return 204, None, {}
        if path == "/sandbox/requests" and method == "GET":
            with server.store.lock:
                return 200, list(server.requests), {}
        if path == "/sandbox/patch" and method == "POST":
            with server.store.lock:
                resource = server.store.get(body["id"])
                if resource is None:
                    raise ArmError(404, "ResourceNotFound", body["id"])
                _merge(resource, body["patch"])
            server.store.save()
            return 200, resource, {}
        raise ArmError(404, "NotFound", f"no control route {method} {path}")


class _Resources:
    """ARM resource routes: `.../providers/{namespace}/{type}/{name}[/{type}/{name}...]`
    for one resource, an odd tail for a collection, and subscription-wide lists."""

    def __init__(
        self, server: ArmServer, parts: list[str], query: dict[str, str], fault: Fault | None
    ) -> None:
        self.server, self.store, self.query, self.fault = server, server.store, query, fault
        self.subscription = parts[1]
        self.path = "/" + "/".join(parts)
        if len(parts) >= 5 and parts[2].lower() == "providers":  # subscription-wide list
            self.resource_group = None
            self.tail = parts[4:]
            self.full_type = "/".join(parts[3:5])
        elif len(parts) >= 6 and parts[2].lower() == "resourcegroups" and parts[4] == "providers":
            self.resource_group = parts[3]
            self.tail = parts[6:]
            self.full_type = "/".join([parts[5], *self.tail[0::2]])
        else:
            raise ArmError(404, "NotFound", f"no ARM route {self.path}")

    @property
    def is_collection(self) -> bool:
        return self.resource_group is None or len(self.tail) % 2 == 1

    def handle(self, method: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.is_collection:
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"{method} on a collection")
            return self._list()
        with self.store.lock:
            existing = self.store.get(self.path)
            if method == "GET":
                if existing is None:
                    raise self._not_found()
                return 200, existing, {}
            if method == "PUT":
                return self._put(existing, body)
            if method == "PATCH":
                if existing is None:
                    raise self._not_found()
                return self._patch(existing, body)
            if method == "DELETE":
                return self._delete(existing)
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _not_found(self) -> ArmError:
        kind = resource_type(self.path)
        name = "/".join(self.tail[1::2])
        return ArmError(
            404,
            "ResourceNotFound" if self.full_type.lower() != VERSIONS else "NotFound",
            f"The Resource '{kind}/{name}' under resource group"
            f" '{self.resource_group}' was not found. For more details please go to"
            " https://aka.ms/ARMResourceNotFoundFix",
        )

    def _list(self) -> tuple[int, Any, dict[str, str]]:
        with self.store.lock:
            if self.resource_group is None:
                found = list(self.store.of_type(self.subscription, self.full_type))
            else:
                parent = self.path.rsplit("/", 1)[0]
                if len(self.tail) > 1 and self.store.get(parent) is None:
                    raise ArmError(404, "ParentResourceNotFound", f"{parent} was not found")
                found = self.store.children(parent, self.tail[-1])
        start = int(self.query.get("$skiptoken", "0"))
        page = found[start : start + PAGE_SIZE]
        body: dict[str, Any] = {"value": page}
        if start + PAGE_SIZE < len(found):
            body["nextLink"] = (
                f"{self.server.base_url}{self.path}?api-version="
                f"{self.query.get('api-version', '')}&$skiptoken={start + PAGE_SIZE}"
            )
        return 200, body, {}

    # -- writes ---------------------------------------------------------------------------

    def _lro(
        self, *, location: str, on_done: Callable[[bool], None], status: int, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        error = None
        if self.fault is not None and self.fault.kind == "fail_operation":
            error = {"code": self.fault.code, "message": self.fault.message}
        operation = self.store.start_operation(
            location=location,
            subscription=self.subscription,
            seconds=self.server.settings.operation_seconds,
            on_done=on_done,
            error=error,
        )
        base = (
            f"{self.server.base_url}/subscriptions/{self.subscription}/providers/"
            f"Microsoft.Compute/locations/{location}"
        )
        version = self.query.get("api-version", "")
        headers = {
            "Azure-AsyncOperation": f"{base}/operations/{operation.operation_id}"
            f"?api-version={version}",
            "Retry-After": "1",
        }
        if status == 202:
            headers["Location"] = (
                f"{base}/operationResults/{operation.operation_id}?api-version={version}"
            )
        self.store.save()
        return status, body, headers

    def _put(self, existing: dict[str, Any] | None, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or "location" not in body and existing is None:
            raise ArmError(400, "LocationRequired", "The location property is required.")
        name = self.tail[-1]
        if len(self.tail) > 2 and self.store.get(parent_id(self.path)) is None:
            raise ArmError(
                404,
                "ParentResourceNotFound",
                f"Can not perform requested operation on nested resource. Parent resource"
                f" '{'/'.join(self.tail[1:-2:2])}' not found.",
            )
        resource = {
            **(existing or {}),
            "id": self.path,
            "name": name,
            "type": resource_type(self.path),
            "location": body.get("location", (existing or {}).get("location")),
            "tags": body.get("tags", (existing or {}).get("tags", {})),
            "properties": _merge(
                dict((existing or {}).get("properties", {})), body.get("properties", {})
            ),
        }
        for key in ("sku", "zones", "identity", "plan"):
            if key in body:
                resource[key] = body[key]
        kind = self.full_type.lower()
        finish = _Lifecycle(self.server, resource)
        if kind == VERSIONS:
            finish.prepare_version(existing)
        elif kind == VMS:
            finish.prepare_vm(existing)
        elif kind == IMAGES:
            resource["properties"].setdefault("sourceVirtualMachine", None)
        resource["properties"]["provisioningState"] = "Creating" if existing is None else "Updating"
        if kind == VMS:
            resource["properties"].setdefault("timeCreated", arm_time())
        self.store.put(resource)
        return self._lro(
            location=resource["location"],
            on_done=finish.done,
            status=201 if existing is None else 200,
            body=resource,
        )

    def _patch(self, existing: dict[str, Any], body: Any) -> tuple[int, Any, dict[str, str]]:
        if "tags" in body:
            existing["tags"] = dict(body["tags"] or {})
        _merge(existing.setdefault("properties", {}), body.get("properties", {}))
        if self.full_type.lower() == VERSIONS:
            _Lifecycle(self.server, existing).replicate()
        existing["properties"]["provisioningState"] = "Updating"
        return self._lro(
            location=existing["location"],
            on_done=_Lifecycle(self.server, existing).done,
            status=200,
            body=existing,
        )

    def _delete(self, existing: dict[str, Any] | None) -> tuple[int, Any, dict[str, str]]:
        if existing is None:
            return 204, None, {}
        prefix = existing["id"].lower() + "/"
        if any(key.startswith(prefix) for key in self.store.resources):
            raise ArmError(
                409,
                "CannotDeleteResource",
                f"Cannot delete resource while nested resources exist: {existing['id']}",
            )
        if self.full_type.lower() in (VERSIONS, IMAGES):
            user = _Lifecycle(self.server, existing).used_by()
            if user:
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Image {existing['id']} is in use by {user} and cannot be deleted.",
                )
        existing["properties"]["provisioningState"] = "Deleting"
        return self._lro(
            location=existing["location"],
            on_done=_Lifecycle(self.server, existing).deleted,
            status=202,
            body=None,
        )


class _Lifecycle:
    """What creating, updating and deleting a resource does beyond storing it."""

    def __init__(self, server: ArmServer, resource: dict[str, Any]) -> None:
        self.server, self.store, self.resource = server, server.store, resource

    @property
    def properties(self) -> dict[str, Any]:
        return self.resource["properties"]

    def done(self, succeeded: bool) -> None:
        current = self.store.get(self.resource["id"])
        if current is None:
            return
        current["properties"]["provisioningState"] = "Succeeded" if succeeded else "Failed"
        if resource_type(current["id"]).lower() == VMS:
            self._vm_done(current, succeeded)

    def deleted(self, succeeded: bool) -> None:
        if not succeeded:
            self.properties["provisioningState"] = "Failed"
            return
        self.store.delete(self.resource["id"])
        if resource_type(self.resource["id"]).lower() == VMS:
            self._vm_deleted()

    # -- gallery image versions -------------------------------------------------------------

    def prepare_version(self, existing: dict[str, Any] | None) -> None:
        name = self.resource["name"]
        if not VERSION_NAME.match(name):
            raise ArmError(
                400,
                "InvalidParameter",
                f"The value '{name}' of parameter 'galleryImageVersionName' is invalid:"
                " it must follow the Major(int).Minor(int).Patch(int) format.",
            )
        source = self.properties.get("storageProfile", {}).get("source", {}).get("id")
        if existing is None and (not source or self.store.get(source) is None):
            raise ArmError(
                400,
                "InvalidParameter",
                f"The source '{source}' of the gallery image version was not found.",
            )
        profile = self.properties.setdefault("publishingProfile", {})
        profile.setdefault("excludeFromLatest", False)
        profile.setdefault("replicaCount", 1)
        profile.setdefault("storageAccountType", "Standard_LRS")
        if existing is None:
            profile["publishedDate"] = arm_time()
        self.properties["storageProfile"].setdefault(
            "osDiskImage", {"sizeInGB": 8, "hostCaching": "ReadWrite"}
        )
        self.replicate()

    def replicate(self) -> None:
        profile = self.properties.setdefault("publishingProfile", {})
        regions = profile.get("targetRegions") or [
            {"name": self.resource["location"], "regionalReplicaCount": 1}
        ]
        profile["targetRegions"] = regions
        self.properties["replicationStatus"] = {
            "aggregatedState": "Completed",
            "summary": [
                {"region": region["name"], "state": "Completed", "progress": 100}
                for region in regions
            ],
        }

    def content_id(self, image_id: str) -> str | None:
        """The managed image a version (or definition's latest version) was made from."""
        seen = 0
        while seen < 10:
            seen += 1
            found = self.store.get(image_id)
            if found is None:
                return None
            kind = resource_type(found["id"]).lower()
            if kind == IMAGES:
                return found["id"]
            if kind == "microsoft.compute/galleries/images":
                latest = _latest_version(self.store.children(found["id"], "versions"))
                if latest is None:
                    return None
                image_id = latest["id"]
            else:
                image_id = found["properties"]["storageProfile"]["source"]["id"]
        return None

    def used_by(self) -> str | None:
        wanted = self.resource["id"].lower()
        for kind, label in (
            (VMS, "virtual machine"),
            ("microsoft.compute/virtualmachinescalesets", "scale set"),
        ):
            for user in self.store.of_type(self.resource["id"].split("/")[2], kind):
                profile = user["properties"].get("virtualMachineProfile", user["properties"])
                reference = profile.get("storageProfile", {}).get("imageReference", {})
                if (reference.get("id") or "").lower() == wanted:
                    return f"{label} {user['name']}"
        return None

    # -- virtual machines -------------------------------------------------------------------

    def prepare_vm(self, existing: dict[str, Any] | None) -> None:
        if existing is not None:
            return
        storage = self.properties.setdefault("storageProfile", {})
        reference = storage.get("imageReference", {}).get("id")
        if not reference or self.store.get(reference) is None:
            raise ArmError(
                404,
                "NotFound" if reference else "InvalidParameter",
                f"The platform image or gallery image '{reference}' is not found.",
            )
        found = self.store.get(reference)
        if found is not None and resource_type(found["id"]).lower() == VERSIONS:
            storage["imageReference"]["exactVersion"] = found["name"]
        group = "/".join(self.resource["id"].split("/")[:5])
        name = self.resource["name"]
        self.properties["vmId"] = str(uuid.uuid4())
        disk_option = storage.setdefault("osDisk", {}).get("deleteOption", "Detach")
        disk_id = f"{group}/providers/Microsoft.Compute/disks/{name}_OsDisk_1_{uuid.uuid4().hex}"
        storage["osDisk"].update(
            {"name": disk_id.rsplit("/", 1)[1], "managedDisk": {"id": disk_id},
             "deleteOption": disk_option, "osType": "Linux"}
        )  # fmt: skip
        self._own(disk_id, {"diskState": "Reserved", "diskSizeGB": 8, "_deleteOption": disk_option})
        network = self.properties.setdefault("networkProfile", {})
        address = self._allocate_address()
        nics = []
        for config in network.get("networkInterfaceConfigurations", []):
            nic_id = f"{group}/providers/Microsoft.Network/networkInterfaces/{name}-nic"
            settings = config.get("properties", config)
            nic_option = settings.get("deleteOption", "Detach")
            ip_config: dict[str, Any] = {
                "name": "ipconfig1",
                "properties": {"privateIPAddress": address, "privateIPAllocationMethod": "Dynamic"},
            }
            public = (settings.get("ipConfigurations") or [{}])[0]
            public = public.get("properties", public).get("publicIPAddressConfiguration")
            if public:
                ip_id = f"{group}/providers/Microsoft.Network/publicIPAddresses/{name}-ip"
                public_option = public.get("properties", public).get("deleteOption", "Detach")
                # Public and private are the same loopback address in the sandbox.
                self._own(ip_id, {"ipAddress": address, "_deleteOption": public_option})
                ip_config["properties"]["publicIPAddress"] = {"id": ip_id}
            self._own(nic_id, {"ipConfigurations": [ip_config], "_deleteOption": nic_option})
            nics.append({"id": nic_id, "properties": {"primary": True, "deleteOption": nic_option}})
        network["networkInterfaces"] = network.get("networkInterfaces", []) + nics
        self.properties["_privateIp"] = address

    def _own(self, resource_id: str, properties: dict[str, Any]) -> None:
        self.store.put(
            {
                "id": resource_id,
                "name": resource_id.rsplit("/", 1)[1],
                "type": resource_type(resource_id),
                "location": self.resource["location"],
                "tags": {},
                "properties": {**properties, "provisioningState": "Succeeded"},
            }
        )

    def _allocate_address(self) -> str:
        network = ipaddress.ip_network(self.server.settings.vm_network)
        used = {
            vm["properties"].get("_privateIp")
            for vm in self.store.resources.values()
            if resource_type(vm["id"]).lower() == VMS
        }
        for host in list(network.hosts())[9:]:
            if str(host) not in used:
                return str(host)
        raise ArmError(409, "SubnetIsFull", f"no free address left in {network}")

    def _vm_done(self, vm: dict[str, Any], succeeded: bool) -> None:
        vm["properties"]["instanceView"] = {
            "statuses": [
                {"code": f"ProvisioningState/{'succeeded' if succeeded else 'failed'}"},
                {"code": "PowerState/running" if succeeded else "PowerState/stopped"},
            ]
        }
        listener = self.server.settings.listener
        reference = vm["properties"]["storageProfile"]["imageReference"]["id"]
        content = self.content_id(reference)
        if succeeded and listener is not None and content is not None:
            listener.vm_started(vm, vm["properties"]["_privateIp"], content)

    def _vm_deleted(self) -> None:
        listener = self.server.settings.listener
        if listener is not None:
            listener.vm_deleted(self.resource)
        owned = [self.properties["storageProfile"].get("osDisk", {}).get("managedDisk", {})]
        for nic in self.properties.get("networkProfile", {}).get("networkInterfaces", []):
            owned.append(nic)
            found = self.store.get(nic["id"])
            for config in (found or {}).get("properties", {}).get("ipConfigurations", []):
                owned.append(config["properties"].get("publicIPAddress") or {})
        for item in owned:
            found = self.store.get(item.get("id", "")) if item.get("id") else None
            if found is not None and found["properties"].get("_deleteOption") == "Delete":
                self.store.delete(found["id"])


def _latest_version(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What `.../images/{definition}` resolves to: the highest version not excluded."""
    eligible = [
        version
        for version in versions
        if not version["properties"].get("publishingProfile", {}).get("excludeFromLatest")
        and version["properties"].get("provisioningState") == "Succeeded"
    ]
    return max(
        eligible,
        key=lambda version: tuple(int(part) for part in version["name"].split(".")),
        default=None,
    )


def seed(store: Store, *, subscription: str, resource_group: str, location: str) -> dict[str, str]:
    """The gallery, image definition and base managed image every sandbox starts with."""
    group = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
    created = arm_time(datetime.now(UTC).replace(microsecond=0))
    ids = {
        "gallery": f"{group}/providers/Microsoft.Compute/galleries/bakery_gallery",
        "base_image": f"{group}/providers/Microsoft.Compute/images/debian-12-base",
        "subnet": f"{group}/providers/Microsoft.Network/virtualNetworks/bakery-vnet/subnets/build",
    }
    defaults = {
        ids["gallery"]: {"identifier": {"uniqueName": "bakery_gallery"}},
        ids["base_image"]: {"storageProfile": {"osDisk": {"osType": "Linux"}}},
        ids["subnet"].rsplit("/", 2)[0]: {"addressSpace": {"addressPrefixes": ["127.0.0.0/8"]}},
        ids["subnet"]: {"addressPrefix": "127.0.0.0/8"},
    }
    with store.lock:
        for resource_id, properties in defaults.items():
            if store.get(resource_id) is None:
                store.put(
                    {
                        "id": resource_id,
                        "name": resource_id.rsplit("/", 1)[1],
                        "type": resource_type(resource_id),
                        "location": location,
                        "tags": {},
                        "properties": {
                            **properties,
                            "provisioningState": "Succeeded",
                            "_created": created,
                        },
                    }
                )
    store.save()
    return ids
