"""The Azure compute client from an Airflow connection, for bakery's Azure adapter.

The microsoft-azure provider's AzureComputeHook reads the connection (client id as login,
client secret as password, `tenantId` and `subscriptionId` in the extra; no secret at
all means DefaultAzureCredential: workload identity, managed identity, ...). bakery adds
three optional extra fields the provider's hook does not know, for clouds other than
Azure's public one (sovereign clouds, Azure Stack Hub, the local sandbox):
`resource_manager_url`, `authority_host` and `ca_bundle`.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.microsoft.azure.hooks.compute import AzureComputeHook
from airflow.providers.microsoft.azure.utils import get_sync_default_azure_credential
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient

# The SDK logs every request's headers at INFO: noise in task logs (tokens are redacted).
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)


class BakeryAzureComputeHook(AzureComputeHook):
    """AzureComputeHook that also honours a custom ARM endpoint, authority and CA bundle,
    and a subscription chosen by the catalog."""

    def __init__(
        self, *, azure_conn_id: str = "azure_bakery", subscription_id: str | None = None
    ) -> None:
        super().__init__(azure_conn_id=azure_conn_id)
        self.subscription_override = subscription_id

    @property
    def extra(self) -> dict[str, Any]:
        return self.get_connection(self.conn_id).extra_dejson

    @property
    def subscription_id(self) -> str:
        value = self.subscription_override or self.extra.get("subscriptionId")
        if not value:
            raise ValueError(
                f"Azure connection {self.conn_id!r} has no subscriptionId in its extra and"
                " the catalog target sets no subscription_id"
            )
        return str(value)

    def get_conn(self) -> ComputeManagementClient:
        conn = self.get_connection(self.conn_id)
        extra = conn.extra_dejson
        transport: dict[str, Any] = {}
        if extra.get("ca_bundle"):
            transport["connection_verify"] = extra["ca_bundle"]
        authority = extra.get("authority_host")
        # A custom authority is not in Microsoft's instance discovery list.
        custom = {"authority": authority, "disable_instance_discovery": True} if authority else {}
        if conn.login and conn.password and extra.get("tenantId"):
            credential: Any = ClientSecretCredential(
                tenant_id=extra["tenantId"],
                client_id=conn.login,
                client_secret=conn.password,
                **custom,
                **transport,
            )
        else:
            credential = get_sync_default_azure_credential(
                managed_identity_client_id=extra.get("managed_identity_client_id"),
                workload_identity_tenant_id=extra.get("workload_identity_tenant_id"),
            )
        options: dict[str, Any] = dict(transport)
        if extra.get("resource_manager_url"):
            options["base_url"] = extra["resource_manager_url"]
            options["credential_scopes"] = [
                extra.get("token_scope", "https://management.azure.com/.default")
            ]
        return ComputeManagementClient(credential, self.subscription_id, **options)

    def packer_environment(self) -> dict[str, str]:
        """Credentials for Packer's environment (never its command line or var-file).
        Empty client fields make Packer use the machine's managed identity."""
        conn = self.get_connection(self.conn_id)
        env = {"ARM_SUBSCRIPTION_ID": self.subscription_id}
        if conn.login and conn.password:
            env |= {
                "ARM_CLIENT_ID": conn.login,
                "ARM_CLIENT_SECRET": conn.password,
                "ARM_TENANT_ID": str(conn.extra_dejson.get("tenantId", "")),
            }
        return env
