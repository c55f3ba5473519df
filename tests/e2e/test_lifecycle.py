"""Bake -> smoke test -> promote -> prune, end to end in the sandbox."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.e2e.sandbox_support import (
    REPO_ROOT,
    Sandbox,
    airflow_env,
    dags_test,
    shell_image,
    tags_of,
    write_catalog,
)

NOTHING_LEFT = {"instances": [], "security_groups": [], "key_pairs": []}
WEB_CHECKS = [
    {
        "name": "homepage",
        "http": {"port": 80, "path": "/", "expect_status": 200, "expect_body": "Baked with Packer"},
    },
    {"name": "nginx running", "service": "nginx"},
]


def _image(tmp_path: Path, name: str, script: str) -> dict[str, Any]:
    image = shell_image(tmp_path, name, script)
    image["smoke"] = {"checks": WEB_CHECKS, "settle_seconds": 5}
    image["retention"] = {"keep_promoted": 1, "keep_younger_than_days": 0}
    return image


def _parameter(sandbox: Sandbox, name: str) -> str | None:
    ssm = sandbox.client("ssm")
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


def test_lifecycle_promotes_smoke_tested_images_and_prunes_superseded_ones(
    sandbox: Sandbox, airflow_home: Path, tmp_path: Path
) -> None:
    # The sandbox outlives a test: unique names keep earlier runs' images out of view.
    run = uuid.uuid4().hex[:6]
    site, forgetful_name = f"site-{run}", f"forgetful-{run}"
    web = _image(tmp_path, site, (REPO_ROOT / "include/scripts/web.sh").read_text())
    # Writes the page but "forgets" nginx: bakes fine, must fail its smoke test.
    forgetful = _image(
        tmp_path,
        forgetful_name,
        "#!/bin/sh\nset -eu\nmkdir -p /var/www/html\n"
        "echo 'Baked with Packer' > /var/www/html/index.html\n",
    )
    env = airflow_env(
        sandbox, airflow_home, BAKERY_CATALOG=str(write_catalog(tmp_path, [web, forgetful]))
    )

    first = dags_test(env, "golden_image_bake")

    output = first.stdout + first.stderr
    assert "state=failed" in output, output[-3000:]  # forgetful failed; the run says so
    assert (
        "smoke test of" in output
        and "check 'homepage' (http) expected HTTP 200 with body containing 'Baked with Packer'"
        in output
    )
    [site_a] = sandbox.images_tagged("bakery:image", site)
    assert tags_of(site_a)["bakery:smoke"] == "passed"
    assert tags_of(site_a)["bakery:channel"] == "stable"
    assert _parameter(sandbox, f"/bakery/{site}/stable") == site_a["ImageId"]
    [failed] = sandbox.images_tagged("bakery:image", forgetful_name)
    assert tags_of(failed)["bakery:smoke"] == "failed"
    assert "bakery:channel" not in tags_of(failed)
    assert _parameter(sandbox, f"/bakery/{forgetful_name}/stable") is None
    assert sandbox.leftovers() == NOTHING_LEFT

    second = dags_test(env, "golden_image_bake", {"images": [site], "force": True})

    assert second.returncode == 0 and "state=success" in second.stdout + second.stderr
    [site_b] = sandbox.images_tagged("bakery:image", site)  # site_a was pruned
    assert site_b["ImageId"] != site_a["ImageId"]
    assert _parameter(sandbox, f"/bakery/{site}/stable") == site_b["ImageId"]
    assert sandbox.snapshots_tagged("bakery:bake-id", tags_of(site_a)["bakery:bake-id"]) == []
    assert "superseded" in second.stdout + second.stderr
    # The failed image is inside its grace period and nobody pruned forgetful's images.
    assert [i["ImageId"] for i in sandbox.images_tagged("bakery:image", forgetful_name)] == [
        failed["ImageId"]
    ]
    assert sandbox.leftovers() == NOTHING_LEFT

    # Nothing changed since: without `force` the target is skipped, and says why.
    unchanged = dags_test(env, "golden_image_bake", {"images": [site]})

    output = unchanged.stdout + unchanged.stderr
    assert unchanged.returncode == 0 and "state=success" in output, output[-3000:]
    assert f"not baked: {site_b['ImageId']} is current" in output
    assert [i["ImageId"] for i in sandbox.images_tagged("bakery:image", site)] == [
        site_b["ImageId"]
    ]

    # `skip_promote`: bake and smoke-test only; the channel keeps its image.
    trial = dags_test(
        env, "golden_image_bake", {"images": [site], "force": True, "skip_promote": True}
    )

    assert trial.returncode == 0, (trial.stdout + trial.stderr)[-3000:]
    [site_c] = [
        i for i in sandbox.images_tagged("bakery:image", site) if i["ImageId"] != site_b["ImageId"]
    ]
    assert tags_of(site_c)["bakery:smoke"] == "passed"
    assert "bakery:channel" not in tags_of(site_c)
    assert _parameter(sandbox, f"/bakery/{site}/stable") == site_b["ImageId"]
    assert "skip_promote param is set" in trial.stdout + trial.stderr
    assert sandbox.leftovers() == NOTHING_LEFT
