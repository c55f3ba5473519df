"""Start the ARM server with its certificate, persisted state, credentials and seed."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from sandbox.azure.server import ArmServer, ServerSettings, VmListener, seed
from sandbox.azure.store import Store
from sandbox.azure.tls import write_self_signed

SUBSCRIPTION_ID = "5a4d0b1e-0000-4000-8000-00000000ba4e"
TENANT_ID = "7e4a1111-0000-4000-8000-00000000ba4e"
CLIENT_ID = "bakery-sandbox-client"
RESOURCE_GROUP = "bakery-sandbox"
LOCATIONS = ("westeurope", "northeurope")


def start_arm_server(
    *,
    port: int,
    state_dir: Path,
    operation_seconds: float = 0.5,
    vm_network: str = "127.122.2.0/24",
    listener: VmListener | None = None,
) -> tuple[ArmServer, dict[str, Any]]:
    """Serve in a background thread; returns the server and what a client needs."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cert, key = write_self_signed(state_dir / "tls")
    secret_file = state_dir / "client-secret"
    if not secret_file.exists():
        secret_file.touch(mode=0o600)
        secret_file.write_text(secrets.token_urlsafe(24))
    store = Store(state_dir / "state.json")
    drop_vms(store)
    ids = seed(store, subscription=SUBSCRIPTION_ID, resource_group=RESOURCE_GROUP,
               location=LOCATIONS[0])  # fmt: skip
    settings = ServerSettings(
        client_id=CLIENT_ID,
        client_secret=secret_file.read_text().strip(),
        tenant_id=TENANT_ID,
        operation_seconds=operation_seconds,
        vm_network=vm_network,
        listener=listener,
    )
    server = ArmServer(port, cert=cert, key=key, store=store, settings=settings)
    server.start()
    endpoint = {
        "base_url": server.base_url,
        "ca_bundle": str(cert),
        "subscription_id": SUBSCRIPTION_ID,
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "client_secret": settings.client_secret,
        "resource_group": RESOURCE_GROUP,
        "locations": list(LOCATIONS),
        **ids,
    }
    return server, endpoint


def airflow_connection(endpoint: dict[str, Any]) -> str:
    """The Airflow connection (JSON) that points bakery's Azure hook at this server."""
    return json.dumps(
        {
            "conn_type": "azure",
            "login": endpoint["client_id"],
            "password": endpoint["client_secret"],
            "extra": {
                "tenantId": endpoint["tenant_id"],
                "subscriptionId": endpoint["subscription_id"],
                "resource_manager_url": endpoint["base_url"],
                "authority_host": endpoint["base_url"],
                "ca_bundle": endpoint["ca_bundle"],
            },
        }
    )


def drop_vms(store: Store) -> None:
    """VMs of a former run lost their stand-ins with it (as moto's instances do): remove
    them and what they own. Galleries, versions and images persist until deleted."""
    from sandbox.azure.store import resource_type

    doomed = {
        "microsoft.compute/virtualmachines",
        "microsoft.network/networkinterfaces",
        "microsoft.network/publicipaddresses",
        "microsoft.compute/disks",
    }
    with store.lock:
        for key in [k for k in store.resources if resource_type(k).lower() in doomed]:
            store.delete(key)
    store.save()
