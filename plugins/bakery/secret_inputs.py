"""Secret inputs of a bake: read from Airflow connections (or the secrets backend behind
them), masked in every task log, and handed to Packer only through its environment."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from bakery.catalog import SecretInput

# The template's `secret_env` variable (sensitive); Packer reads PKR_VAR_<name>.
PACKER_SECRET_ENV_VARIABLE = "PKR_VAR_secret_env"


class SecretInputError(RuntimeError):
    """A secret input names a connection or field that holds no value."""


def resolve_secret_inputs(inputs: Iterable[SecretInput]) -> dict[str, str]:
    """Environment name -> value. Every value is registered with Airflow's log masker
    before anything else can print it."""
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    values: dict[str, str] = {}
    for secret in inputs:
        connection = Connection.get(secret.connection)
        if secret.field == "extra":
            value = connection.extra_dejson.get(secret.key or "")
        else:
            value = getattr(connection, secret.field)
        if not value:
            where = f"extra[{secret.key!r}]" if secret.field == "extra" else secret.field
            raise SecretInputError(
                f"secret {secret.env}: connection {secret.connection!r} has no {where}"
            )
        value = str(value)
        mask_secret(value, name=secret.env)
        values[secret.env] = value
    return values


def hcl_string(value: str) -> str:
    """A quoted HCL string literal holding `value` exactly: JSON escapes, plus HCL's own
    template sequences, which would otherwise be interpolated."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def packer_secret_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The environment that gives the template's sensitive `secret_env` map its values."""
    if not values:
        return {}
    entries = ", ".join(f"{name} = {hcl_string(value)}" for name, value in sorted(values.items()))
    return {PACKER_SECRET_ENV_VARIABLE: "{" + entries + "}"}
