"""The bake DAG under `airflow dags test`, with real Packer against the sandbox cloud."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.sandbox_support import (
    Sandbox,
    airflow_env,
    dags_test,
    shell_image,
    tags_of,
    write_catalog,
)

REQUIRED_TAGS = (
    "bakery:managed",
    "bakery:image",
    "bakery:bake-id",
    "bakery:source-image",
    "bakery:template-hash",
    "bakery:dag-run-id",
)


def test_bake_dag_bakes_web_with_nginx_and_tags_everything(
    sandbox: Sandbox, airflow_home: Path
) -> None:
    env = airflow_env(sandbox, airflow_home)
    before = {i["ImageId"] for i in sandbox.images_tagged("bakery:image", "web")}

    result = dags_test(
        env, "golden_image_bake", {"images": ["web"], "regions": ["us-east-1"], "force": True}
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "state=success" in result.stdout + result.stderr
    new = [i for i in sandbox.images_tagged("bakery:image", "web") if i["ImageId"] not in before]
    assert len(new) == 1, f"expected one new web AMI in us-east-1, got {new}"
    image = new[0]
    tags = tags_of(image)
    assert all(tags.get(key) for key in REQUIRED_TAGS), tags
    assert tags["bakery:source-image"] == "ami-0deb12000000000a1"
    assert tags["bakery:dag-run-id"].startswith("manual__")

    snapshots = sandbox.snapshots_tagged("bakery:bake-id", tags["bakery:bake-id"])
    assert snapshots and all(set(REQUIRED_TAGS) <= set(tags_of(s)) for s in snapshots)
    builders = [
        i
        for r in sandbox.ec2().describe_instances(
            Filters=[{"Name": "tag:bakery:bake-id", "Values": [tags["bakery:bake-id"]]}]
        )["Reservations"]
        for i in r["Instances"]
    ]
    roles = sorted(tags_of(instance)["bakery:role"] for instance in builders)
    assert roles == ["builder", "smoke"], roles
    assert all(instance["State"]["Name"] == "terminated" for instance in builders)

    layer = sandbox.image_layer(image["ImageId"])
    assert (layer / "var/www/html/index.html").read_text().strip() == "Baked with Packer"
    assert (layer / "usr/sbin/nginx").is_file()
    # No eu-west-1 bake was asked for: the regions param narrowed the fan-out.
    assert "web/aws/eu-west-1" not in result.stdout + result.stderr
    assert sandbox.leftovers() == {"instances": [], "security_groups": [], "key_pairs": []}


def test_failing_provisioner_fails_the_task_with_packers_message_and_leaves_nothing(
    sandbox: Sandbox, airflow_home: Path, tmp_path: Path
) -> None:
    broken = shell_image(tmp_path, "broken", "#!/bin/sh\necho about to fail\nexit 7\n")
    healthy = shell_image(tmp_path, "tiny", "#!/bin/sh\necho fine > /etc/tiny-baked\n")
    catalog = write_catalog(tmp_path, [broken, healthy])
    env = airflow_env(sandbox, airflow_home, BAKERY_CATALOG=str(catalog))

    result = dags_test(env, "golden_image_bake", {"force": True})

    output = result.stdout + result.stderr
    assert "state=failed" in output, output[-4000:]
    assert "Script exited with non-zero exit status: 7" in output
    assert "Packer build failed at step" in output
    assert sandbox.images_tagged("bakery:image", "broken") == []
    assert sandbox.snapshots_tagged("bakery:image", "broken") == []
    # One image's failure does not block the other's.
    tiny = sandbox.images_tagged("bakery:image", "tiny")
    assert len(tiny) >= 1
    assert (sandbox.image_layer(tiny[-1]["ImageId"]) / "etc/tiny-baked").read_text() == "fine\n"
    assert sandbox.leftovers() == {"instances": [], "security_groups": [], "key_pairs": []}
