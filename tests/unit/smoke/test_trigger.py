"""SmokeTestTrigger: where it reaches the instance, and that it survives serialization."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import pytest

from bakery.catalog import AwsTarget, SmokeCheck
from bakery.smoke.transport import Endpoint

CLASSPATH = "bakery.triggers.smoke.SmokeTestTrigger"


@pytest.fixture(scope="module")
def trigger_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The trigger module, imported with Airflow pointed at a throwaway home.

    Imported here rather than at the top so that collecting this file does not import
    Airflow with whatever AIRFLOW_HOME the shell has (tests/dags sets its own)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        mp.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
        return importlib.import_module("bakery.triggers.smoke")


def instance(**fields: Any) -> dict[str, Any]:
    return {"InstanceId": "i-0123456789abcdef0", "State": {"Name": "running"}, **fields}


# --- resolve_endpoint ---------------------------------------------------------------------

ADDRESSES = {
    "PrivateIpAddress": "10.0.1.15",
    "PublicIpAddress": "54.1.2.3",
    "PrivateDnsName": "ip-10-0-1-15.ec2.internal",
    "PublicDnsName": "ec2-54-1-2-3.compute-1.amazonaws.com",
}


@pytest.mark.parametrize(
    ("reach", "host"),
    [
        ("private_ip", "10.0.1.15"),
        ("public_ip", "54.1.2.3"),
        ("private_dns", "ip-10-0-1-15.ec2.internal"),
        ("public_dns", "ec2-54-1-2-3.compute-1.amazonaws.com"),
    ],
)
def test_resolve_endpoint_by_address(trigger_module: ModuleType, reach: str, host: str) -> None:
    endpoint = trigger_module.resolve_endpoint(instance(**ADDRESSES), reach=reach, ssh_port=22)
    assert endpoint == Endpoint(host=host, ssh_port=22)


def test_every_catalog_ssh_interface_can_be_resolved(trigger_module: ModuleType) -> None:
    interfaces = get_args(AwsTarget.model_fields["ssh_interface"].annotation)
    assert set(interfaces) == set(trigger_module.ADDRESS_FIELDS)
    for reach in interfaces:
        assert trigger_module.resolve_endpoint(instance(**ADDRESSES), reach=reach, ssh_port=22)


@pytest.mark.parametrize(
    ("reach", "fields"),
    [
        ("private_ip", {}),
        ("public_ip", {"PrivateIpAddress": "10.0.1.15"}),  # no public address (yet)
        ("public_dns", {"PublicDnsName": ""}),  # EC2 reports an empty name, not none
        ("private_ip", {"PrivateIpAddress": None}),
    ],
)
def test_resolve_endpoint_without_the_address_is_none(
    trigger_module: ModuleType, reach: str, fields: dict[str, Any]
) -> None:
    assert trigger_module.resolve_endpoint(instance(**fields), reach=reach, ssh_port=22) is None


def test_resolve_endpoint_keeps_the_configured_ssh_port(trigger_module: ModuleType) -> None:
    endpoint = trigger_module.resolve_endpoint(
        instance(PrivateIpAddress="10.0.1.15"), reach="private_ip", ssh_port=2222
    )
    assert endpoint == Endpoint(host="10.0.1.15", ssh_port=2222)


def test_resolve_endpoint_rejects_an_unknown_reach(trigger_module: ModuleType) -> None:
    with pytest.raises(ValueError, match="'ipv6'.*private_ip, public_ip"):
        trigger_module.resolve_endpoint(instance(**ADDRESSES), reach="ipv6", ssh_port=22)


def tagged(**tags: str) -> dict[str, Any]:
    return instance(
        PrivateIpAddress="10.0.1.15",
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.5", Endpoint(host="127.0.0.5", ssh_port=22)),
        ("127.0.0.5:2201", Endpoint(host="127.0.0.5", ssh_port=2201)),
        ("standin-3.local:10022", Endpoint(host="standin-3.local", ssh_port=10022)),
        ("standin-3.local:", Endpoint(host="standin-3.local", ssh_port=22)),
    ],
)
def test_resolve_endpoint_by_tag(
    trigger_module: ModuleType, value: str, expected: Endpoint
) -> None:
    found = tagged(Name="smoke", **{"sandbox-address": value})
    assert trigger_module.resolve_endpoint(found, reach="tag:sandbox-address", ssh_port=22) == (
        expected
    )


def test_resolve_endpoint_tag_port_defaults_to_the_ssh_port(trigger_module: ModuleType) -> None:
    found = tagged(**{"sandbox-address": "127.0.0.5"})
    endpoint = trigger_module.resolve_endpoint(found, reach="tag:sandbox-address", ssh_port=2022)
    assert endpoint == Endpoint(host="127.0.0.5", ssh_port=2022)


@pytest.mark.parametrize(
    "found",
    [
        instance(PrivateIpAddress="10.0.1.15"),  # no tags at all
        tagged(Name="smoke"),  # not that tag
        tagged(**{"sandbox-address": ""}),  # empty value
    ],
)
def test_resolve_endpoint_by_missing_tag_is_none(
    trigger_module: ModuleType, found: dict[str, Any]
) -> None:
    # Never falls back to an address: the tag says how this network reaches instances.
    assert trigger_module.resolve_endpoint(found, reach="tag:sandbox-address", ssh_port=22) is None


# --- serialization ------------------------------------------------------------------------

CHECKS = [
    SmokeCheck.model_validate(raw).model_dump(mode="json")
    for raw in (
        {"name": "homepage", "http": {"port": 80, "expect_body": "Baked with Packer"}},
        {"name": "nginx running", "service": "nginx"},
        {"name": "config", "file": "/etc/nginx/nginx.conf"},
        {"name": "version", "command": {"run": "nginx -v", "expect_output": "nginx"}},
    )
]
REQUIRED: dict[str, Any] = {
    "aws_conn_id": "aws_bakery",
    "region_name": "us-east-1",
    "instance_id": "i-0123456789abcdef0",
    "key_name": "bakery-smoke-abc123-1",
    "ssh_user": "admin",
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "checks": CHECKS,
}
TRIGGER_KWARGS = [
    pytest.param(REQUIRED, id="defaults"),
    pytest.param(
        {
            **REQUIRED,
            "reach": "tag:sandbox-address",
            "ssh_port": 2222,
            "timeout_seconds": 120.0,
            "settle_seconds": 5,
            "poll_interval": 0.5,
        },
        id="everything-set",
    ),
    pytest.param({**REQUIRED, "checks": []}, id="no-checks"),
]


@pytest.mark.parametrize("kwargs", TRIGGER_KWARGS)
def test_trigger_serialization_round_trip(
    trigger_module: ModuleType, kwargs: dict[str, Any]
) -> None:
    trigger = trigger_module.SmokeTestTrigger(**kwargs)
    classpath, serialized = trigger.serialize()
    assert classpath == CLASSPATH

    rebuilt = trigger_module.SmokeTestTrigger(**serialized)
    assert rebuilt.serialize() == (classpath, serialized)
    for name, value in kwargs.items():
        assert serialized[name] == value


@pytest.mark.parametrize("kwargs", TRIGGER_KWARGS)
def test_trigger_serializes_every_init_parameter(
    trigger_module: ModuleType, kwargs: dict[str, Any]
) -> None:
    trigger_class = trigger_module.SmokeTestTrigger
    parameters = set(inspect.signature(trigger_class.__init__).parameters) - {"self"}
    _, serialized = trigger_class(**kwargs).serialize()
    assert set(serialized) == parameters


def test_trigger_survives_airflows_storage_round_trip(trigger_module: ModuleType) -> None:
    """As the triggerer gets it: kwargs through Airflow's serde and JSON, class by path."""
    from airflow.sdk.module_loading import import_string
    from airflow.sdk.serde import deserialize, serialize

    classpath, kwargs = trigger_module.SmokeTestTrigger(**REQUIRED).serialize()
    stored = json.dumps(serialize(kwargs))
    loaded = deserialize(json.loads(stored))
    rebuilt = import_string(classpath)(**loaded)
    assert type(rebuilt) is trigger_module.SmokeTestTrigger
    assert rebuilt.serialize() == (classpath, kwargs)
    # The checks still validate as catalog checks on the other side.
    assert [SmokeCheck.model_validate(raw) for raw in rebuilt.checks] == [
        SmokeCheck.model_validate(raw) for raw in CHECKS
    ]


def test_trigger_module_path_matches_its_file(trigger_module: ModuleType) -> None:
    # The triggerer imports the class by this path from plugins/; a rename breaks deferral.
    assert Path(trigger_module.__file__).as_posix().endswith("plugins/bakery/triggers/smoke.py")
