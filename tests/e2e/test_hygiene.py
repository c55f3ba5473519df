"""Image hygiene end to end: secrets from an Airflow connection reach the provisioner and
nothing else, the shared clean-up runs last, and the smoke test's hygiene scan keeps an
image that leaks a key or a secret from being promoted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.alert_receivers import webhook_receiver
from tests.e2e.sandbox_support import (
    Sandbox,
    airflow_env,
    dags_test,
    shell_image,
    tags_of,
    write_catalog,
)
from tests.process_watch import command_lines_holding

FEED_CONNECTION = "feed_bakery"
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
USER_DATA = """#cloud-config
write_files:
  - path: /etc/bakery/smoke-identity
    content: injected-at-boot
"""


def _image(tmp_path: Path, name: str, script: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    image = shell_image(tmp_path, name, script)
    image["secrets"] = [{"env": "FEED_TOKEN", "connection": FEED_CONNECTION}]
    image["smoke"] = {"checks": checks, "settle_seconds": 2}
    return image


def files_holding(root: Path, secret: str) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()
    ]


def test_a_leaky_image_fails_hygiene_and_a_secret_reaches_nothing_but_its_provisioner(
    sandbox: Sandbox, airflow_home: Path, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    secret = f"feed-token-{uuid.uuid4().hex}"
    tidy_name, leaky_name, careless_name = f"tidy-{run}", f"leaky-{run}", f"careless-{run}"
    uses_the_token = (
        "#!/bin/sh\nset -eu\n"
        'test -n "$FEED_TOKEN"\n'
        'echo "fetching packages with token $FEED_TOKEN"\n'  # careless: must be masked
        "mkdir -p /srv/app && echo ready > /srv/app/status\n"
    )
    tidy = _image(
        tmp_path,
        tidy_name,
        uses_the_token,
        [
            {"name": "app status", "file": "/srv/app/status"},
            {
                "name": "identity from user-data",
                "command": {
                    "run": "cat /etc/bakery/smoke-identity",
                    "expect_output": "injected-at-boot",
                },
            },
        ],
    )
    (tmp_path / "smoke-user-data.yaml").write_text(USER_DATA)
    tidy["smoke"]["user_data"] = str(tmp_path / "smoke-user-data.yaml")
    leaky = _image(
        tmp_path,
        leaky_name,
        uses_the_token
        + "mkdir -p /etc/leaky /opt/leaky\n"
        + 'echo "token=$FEED_TOKEN" > /etc/leaky/feed.conf\n'
        + f"printf '%b\\n' '{PEM}' > /opt/leaky/deploy.pem\n",
        [{"name": "app status", "file": "/srv/app/status"}],
    )
    # Fails its bake with the secret in its error output: the alert must not carry it.
    careless = _image(
        tmp_path,
        careless_name,
        '#!/bin/sh\necho "feed refused token $FEED_TOKEN" >&2\nexit 3\n',
        [{"name": "app status", "file": "/srv/app/status"}],
    )
    images = [tidy, leaky, careless]
    connection = json.dumps({"conn_type": "generic", "password": secret})

    with webhook_receiver() as alerts, command_lines_holding(secret) as command_lines:
        channel = {"conn_type": "http", "host": "127.0.0.1", "port": alerts.port, "schema": "http"}
        env = airflow_env(
            sandbox,
            airflow_home,
            BAKERY_CATALOG=str(write_catalog(tmp_path, images)),
            AIRFLOW_CONN_BAKERY_ALERTS=json.dumps({**channel, "extra": {"payload": "json"}}),
            **{f"AIRFLOW_CONN_{FEED_CONNECTION.upper()}": connection},
        )
        result = dags_test(env, "golden_image_bake", {"images": [i["name"] for i in images]})

    output = result.stdout + result.stderr
    (tmp_path / "dags-test.log").write_text(output)  # for a failure's post-mortem
    assert "state=failed" in output, output[-3000:]  # leaky failed its smoke test
    assert "private key at /opt/leaky/deploy.pem [private-key]" in output, output[-5000:]
    assert "value of a bake secret at /etc/leaky/feed.conf [secret-value]" in output
    assert "fetching packages with token" in output  # the careless line ran, masked
    assert secret not in output
    assert command_lines == []
    task_logs = [p for p in (airflow_home / "logs").rglob("*") if p.is_file()]
    assert not [str(p) for p in task_logs if secret in p.read_text(errors="replace")]
    failures = {
        body["fields"]["image"]: body
        for body in (item.body for item in alerts.received)
        if body.get("kind") == "failure"
    }
    assert {careless_name, leaky_name} <= failures.keys(), alerts.received
    assert secret not in json.dumps([item.body for item in alerts.received])

    [leaky_image] = sandbox.images_tagged("bakery:image", leaky_name)
    assert tags_of(leaky_image)["bakery:smoke"] == "failed"
    assert "bakery:channel" not in tags_of(leaky_image)

    [tidy_image] = sandbox.images_tagged("bakery:image", tidy_name)
    assert tags_of(tidy_image)["bakery:smoke"] == "passed"
    assert tags_of(tidy_image)["bakery:channel"] == "stable"
    layer = sandbox.image_layer(tidy_image["ImageId"])
    assert files_holding(layer, secret) == []
    # The shared clean-up ran last: no builder key, host keys or machine-id were captured.
    assert not (layer / "home/admin/.ssh/authorized_keys").exists()
    assert not list((layer / "etc/ssh").glob("ssh_host_*"))
    assert (layer / "etc/machine-id").read_text() == ""
