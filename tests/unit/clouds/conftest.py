from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.vcsim import VcsimEndpoint, VcsimUnavailableError
from tests.vcsim_support import connection_uri, restore_env, running_vcsim, set_env

CONN_ID = "vsphere_test"


@pytest.fixture(scope="session")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VcsimEndpoint]:
    """A fresh vcsim for this test session, reachable as the Airflow connection
    `vsphere_test` (AIRFLOW_CONN_VSPHERE_TEST)."""
    try:
        with running_vcsim(tmp_path_factory.mktemp("vcsim")) as endpoint:
            previous = set_env({"AIRFLOW_CONN_VSPHERE_TEST": connection_uri(endpoint)})
            try:
                yield endpoint
            finally:
                restore_env(previous)
    except VcsimUnavailableError as exc:
        pytest.skip(f"VCSIM CANNOT BE BUILT HERE: {exc}")


@pytest.fixture(scope="session")
def vcenter(vcsim: VcsimEndpoint) -> Iterator[Any]:
    """A pyvmomi ServiceInstanceContent on the test vcsim, for arranging and checking."""
    from pyVim.connect import Disconnect, SmartConnect

    service = SmartConnect(
        host=vcsim.host,
        port=vcsim.port,
        user=vcsim.username,
        pwd=vcsim.password,
        disableSslCertValidation=True,
    )
    yield service.RetrieveContent()
    Disconnect(service)
