"""The freshness page in a real browser against a real `airflow standalone`.

Seeds the sandbox with a real bake (one image passes its smoke test and is promoted, one
fails it, one is never baked), runs the audit DAG to write the JSON report, starts
`airflow standalone` on 127.0.0.1, and drives Debian's Chromium through playwright: log
in, open the page from the UI, check the statuses against the audit's, click "Bake now",
and find the new run through the REST API with just that image in its conf.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bakery.constants import BAKE_DAG_ID
from tests.e2e.production_support import free_port, tail
from tests.e2e.sandbox_support import (
    REPO_ROOT,
    Sandbox,
    airflow_env,
    dags_test,
    shell_image,
    write_catalog,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT_DIR = REPO_ROOT / "test-output"
STARTUP_TIMEOUT = 240

pytestmark = [
    pytest.mark.timeout(1500),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"CHROMIUM MISSING: {CHROMIUM} not found (apt-get install chromium; `make test`"
        " installs it)",
    ),
]


@dataclass
class Standalone:
    base_url: str
    passwords: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def token(self, user: str) -> str:
        response = httpx.post(
            f"{self.base_url}/auth/token",
            json={"username": user, "password": self.passwords[user]},
            timeout=30,
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["access_token"])

    def api(self, method: str, path: str, user: str = "admin", **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base_url}/api/v2/{path}",
            headers={"Authorization": f"Bearer {self.token(user)}"},
            timeout=30,
            **kwargs,
        )

    def wait_for(self, what: str, ready: Any, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"airflow standalone exited:\n{tail(self.log, 60)}")
            try:
                if ready():
                    return
            except (httpx.HTTPError, AssertionError) as exc:
                last = exc
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what} ({last!r}):\n{tail(self.log, 60)}")


def api_server_env(port: int) -> dict[str, str]:
    """Where the API server listens; the seeding bake's links are built with it too."""
    return {
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }


@contextlib.contextmanager
def airflow_standalone(env: dict[str, str], home: Path) -> Generator[Standalone, None, None]:
    """`airflow standalone` (api-server, scheduler, dag-processor, triggerer) on the port
    `env` names, with an admin and a viewer whose passwords the test chooses."""
    passwords = {"admin": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12)}
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    port = int(env["AIRFLOW__API__PORT"])
    env = {
        **env,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        # Runs come from the page only, and stay queued: the test checks the run that
        # "Bake now" creates, not a second bake.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # Fixed default ports would collide with another Airflow on this machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }
    log = home / "standalone.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [str(REPO_ROOT / ".venv" / "bin" / "airflow"), "standalone"],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    standalone = Standalone(f"http://127.0.0.1:{port}", passwords, process, log)
    try:
        yield standalone
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def seed_images(sandbox: Sandbox, home: Path, work: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Bake a passing and a failing image, leave a third unbaked, and audit: returns the
    environment every Airflow process uses and the expected status per target."""
    run = uuid.uuid4().hex[:6]  # the sandbox outlives a test: earlier images stay out of view
    site, flaky, later = f"site-{run}", f"flaky-{run}", f"later-{run}"
    checks = [
        {
            "name": "homepage",
            "http": {"port": 80, "path": "/", "expect_status": 200, "expect_body": "Baked"},
        }
    ]
    images = []
    for name, script in (
        (site, (REPO_ROOT / "include/scripts/web.sh").read_text()),
        # Bakes fine but serves nothing: fails its smoke test.
        (flaky, "#!/bin/sh\necho 'no web server here' > /etc/motd\n"),
        (later, "#!/bin/sh\ntrue\n"),
    ):
        image = shell_image(work, name, script)
        image["smoke"] = {"checks": checks, "settle_seconds": 3, "timeout_seconds": 300}
        images.append(image)
    env = airflow_env(
        sandbox,
        home,
        BAKERY_CATALOG=str(write_catalog(work, images)),
        BAKERY_REPORT_DIR=str(work / "report"),
        **api_server_env(free_port()),
    )
    migrated = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    baked = dags_test(env, BAKE_DAG_ID, {"images": [site, flaky]})
    output = baked.stdout + baked.stderr
    assert "state=failed" in output, output[-3000:]  # flaky failed its smoke test
    audited = dags_test(env, "golden_image_audit")
    assert audited.returncode == 0, (audited.stdout + audited.stderr)[-3000:]
    expected = {
        f"{site}/aws/us-east-1": "FRESH",
        f"{flaky}/aws/us-east-1": "FAILED",
        f"{later}/aws/us-east-1": "MISSING",
    }
    return env, expected


def log_in(browser: Any, airflow: Standalone, user: str) -> Any:
    """A new browser session logged in to Airflow as `user` through its login form."""
    page = browser.new_context(viewport={"width": 1500, "height": 900}).new_page()
    page.goto(f"{airflow.base_url}/auth/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", airflow.passwords[user])
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
    return page


def task_links(airflow: Standalone, run_id: str, label: str) -> dict[str, dict[str, str]]:
    """Task id -> its extra links, for the mapped task instances of one target."""
    listed = airflow.api(
        "GET", f"dags/{BAKE_DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
    )
    assert listed.status_code == 200, listed.text
    links = {}
    for ti in listed.json()["task_instances"]:
        if ti.get("rendered_map_index") != label:
            continue
        found = airflow.api(
            "GET",
            f"dags/{BAKE_DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/links",
            params={"map_index": ti["map_index"]},
        )
        assert found.status_code == 200, found.text
        links[ti["task_id"]] = {k: v for k, v in found.json()["extra_links"].items() if v}
    return links


def test_freshness_page_shows_audit_statuses_and_bakes_one_image_as_the_user(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    home = tmp_path / "airflow-home"
    home.mkdir()
    env, expected = seed_images(sandbox, home, tmp_path)
    report = json.loads((tmp_path / "report" / "freshness.json").read_text())
    audited = {f"{t['image']}/{t['cloud']}/{t['region']}": t["status"] for t in report["targets"]}
    assert audited == expected  # the page must show exactly what the audit computed

    with airflow_standalone(env, home) as airflow:
        airflow.wait_for("the API server", lambda: airflow.token("admin"))
        airflow.wait_for(
            f"{BAKE_DAG_ID} to be parsed",
            lambda: airflow.api("GET", f"dags/{BAKE_DAG_ID}").status_code == 200,
        )

        # Plugin apps are not protected by Airflow itself: the page must refuse strangers.
        anonymous = httpx.get(f"{airflow.base_url}/bakery/freshness", timeout=30)
        assert anonymous.status_code == 401, (anonymous.status_code, anonymous.text[:300])
        forged = httpx.get(
            f"{airflow.base_url}/bakery/freshness", cookies={"_token": "forged"}, timeout=30
        )
        assert forged.status_code in (401, 403), forged.status_code
        assert "Bake now" not in anonymous.text + forged.text

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = log_in(browser, airflow, "admin")

                # The page as the nav shows it: inside the UI, in the plugin's frame.
                page.goto(f"{airflow.base_url}/plugin/bakery-freshness")
                frame = page.frame_locator("iframe")
                for target, status in expected.items():
                    row = frame.locator(f"tr[data-target='{target}']")
                    expect(row).to_have_attribute("data-status", status, timeout=60_000)
                    expect(row.locator(".status")).to_have_text(status)

                site = next(t for t, s in expected.items() if s == "FRESH").split("/")[0]
                section = frame.locator(f"section[data-image='{site}']")
                section.get_by_role("button", name="Bake now").click()
                run_link = section.locator("a.run-link")
                expect(run_link).to_be_visible(timeout=30_000)
                run_id = run_link.inner_text()
                SCREENSHOT_DIR.mkdir(exist_ok=True)
                for folder in (tmp_path, SCREENSHOT_DIR):
                    page.screenshot(path=str(folder / "freshness-page.png"), full_page=True)

                # The button acts with the clicking user's rights: a viewer sees the page,
                # and Airflow refuses the viewer's bake.
                viewer = log_in(browser, airflow, "viewer")
                viewer.goto(f"{airflow.base_url}/bakery/freshness")
                viewer_section = viewer.locator(f"section[data-image='{site}']")
                viewer_section.get_by_role("button", name="Bake now").click()
                expect(viewer_section.locator(".bake-result.error")).to_contain_text(
                    "Airflow refused (403)", timeout=30_000
                )
            finally:
                browser.close()

        created = airflow.api("GET", f"dags/{BAKE_DAG_ID}/dagRuns/{run_id}")
        assert created.status_code == 200, created.text
        run = created.json()
        assert run["conf"] == {"images": [site], "force": True}
        assert run["run_type"] == "manual"
        # Made with the clicking user's own session, not by the page on its behalf.
        assert run.get("triggering_user_name") == "admin", run

        # The seeding bake's tasks link to the AMI in the AWS console and to the smoke log.
        fresh = next(t for t in report["targets"] if t["status"] == "FRESH")
        links = task_links(airflow, fresh["last_bake"]["dag_run_id"], f"{site}/aws/us-east-1")
        console = (
            "https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1"
            f"#ImageDetails:imageId={fresh['image_id']}"
        )
        assert links["image_lifecycle.packer_build"] == {"Image in console": console}
        assert links["image_lifecycle.promote"] == {"Image in console": console}
        smoke_log = links["image_lifecycle.smoke_test"]["Smoke check log"]
        assert smoke_log.startswith(f"{airflow.base_url}/dags/{BAKE_DAG_ID}/runs/")
        assert "/tasks/image_lifecycle.smoke_test/mapped/" in smoke_log

        runs = airflow.api("GET", f"dags/{BAKE_DAG_ID}/dagRuns", params={"limit": 100}).json()
        manual = [r["dag_run_id"] for r in runs["dag_runs"] if (r["conf"] or {}).get("force")]
        assert manual == [run_id], f"only the admin's click made a run: {manual}"
    shutil.rmtree(home / "logs", ignore_errors=True)
