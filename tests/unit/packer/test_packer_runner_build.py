"""PackerRunner against the real Packer binary: builds, failures, variables, validation."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from bakery.packer import PackerArtifact, PackerError, PackerResult, PackerRunner
from tests.unit.packer.packer_support import (
    RECORD_PGID,
    Workspace,
    command_line,
    live_processes_in_group,
    wait_until,
)

SECRET = "s3cr3t-Value-42"
TOKEN = "tok-Other-99"


def test_successful_build_returns_the_manifest_artifacts(workspace: Workspace) -> None:
    template = workspace.template("echo hello")

    result = workspace.runner().build(template, manifest_path=workspace.manifest)

    assert result.artifacts == (
        PackerArtifact(
            build_name="web",
            builder_type="null",
            image_id="Null",
            region=None,
            custom_data={"owner": "bakery"},
        ),
    )
    assert result.duration_seconds > 0


def test_second_build_returns_only_its_own_artifacts(workspace: Workspace) -> None:
    template = workspace.template("true")
    runner = workspace.runner()
    runner.build(template, manifest_path=workspace.manifest)

    result = runner.build(template, manifest_path=workspace.manifest)

    recorded = json.loads(workspace.manifest.read_text())["builds"]
    assert len(recorded) == 2  # Packer appends each run to the manifest...
    assert len(result.artifacts) == 1  # ...but only the latest run is this build's.


def test_failing_provisioner_names_the_step_and_packers_error(workspace: Workspace) -> None:
    template = workspace.template("echo preparing", "echo disk is full >&2", "exit 3")

    with pytest.raises(PackerError) as excinfo:
        workspace.runner().build(template, manifest_path=workspace.manifest)

    error = excinfo.value
    message = str(error)
    assert message.startswith("Packer build failed at step 'Running local shell script: /tmp/")
    assert "(exit code 1): bake.null.web: Script exited with non-zero exit status: 3" in message
    assert "bake.null.web: disk is full" in message
    assert error.exit_code == 1
    assert error.step is not None and error.step.startswith("Running local shell script:")
    assert "non-zero exit status: 3" in error.error_lines[0]


def test_env_variables_reach_packer_and_secrets_are_masked_in_logs(
    workspace: Workspace,
) -> None:
    template = workspace.template("echo token=${var.secret}", "echo stderr ${var.secret} >&2")
    runner = workspace.runner(env=workspace.env(secret=SECRET), secrets=[SECRET])

    runner.build(template, manifest_path=workspace.manifest)

    assert "    bake.null.web: token=***" in workspace.log.messages(logging.INFO)
    assert "==> bake.null.web: stderr ***" in workspace.log.messages(logging.ERROR)
    assert SECRET not in workspace.log.text


def test_var_file_variables_reach_packer(workspace: Workspace) -> None:
    var_file = workspace.dir / "vars.pkrvars.hcl"
    var_file.write_text(f'api_token = "{TOKEN}"\nmanifest = "from-var-file.json"\n')
    template = workspace.template("echo token=${var.api_token}")

    result = workspace.runner(secrets=[TOKEN]).build(
        template, var_file=var_file, manifest_path=Path("from-var-file.json")
    )

    assert len(result.artifacts) == 1
    assert "    bake.null.web: token=***" in workspace.log.messages(logging.INFO)
    assert TOKEN not in workspace.log.text


def test_secret_is_masked_in_build_error_message(workspace: Workspace) -> None:
    template = workspace.template("echo bad password ${var.secret} >&2", "exit 3")
    runner = workspace.runner(env=workspace.env(secret=SECRET), secrets=[SECRET])

    with pytest.raises(PackerError) as excinfo:
        runner.build(template, manifest_path=workspace.manifest)

    assert "bad password ***" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)
    assert all(SECRET not in line for line in excinfo.value.error_lines)


def test_secrets_never_appear_in_any_packer_command_line(workspace: Workspace) -> None:
    var_file = workspace.dir / "vars.pkrvars.hcl"
    var_file.write_text(f'api_token = "{TOKEN}"\n')
    template = workspace.template(
        "test -n '${var.secret}' && test -n '${var.api_token}'",
        RECORD_PGID,
        "while [ ! -f release ]; do sleep 0.05; done",
    )
    runner = workspace.runner(env=workspace.env(secret=SECRET), secrets=[SECRET, TOKEN])
    results: list[PackerResult] = []
    build = threading.Thread(
        target=lambda: results.append(
            runner.build(template, var_file=var_file, manifest_path=workspace.manifest)
        )
    )
    build.start()
    try:
        pgid = workspace.pgid()
        command_lines = [command_line(pid) for pid in live_processes_in_group(pgid)]
    finally:
        (workspace.dir / "release").touch()
        build.join(timeout=30)

    assert len(results) == 1, "the build did not succeed"
    assert any(" build -machine-readable -color=false -var-file=" in c for c in command_lines)
    assert len(command_lines) >= 3  # Packer, its plugins and the provisioner's shell
    for line in command_lines:
        assert SECRET not in line
        assert TOKEN not in line


def test_output_is_logged_while_the_build_is_still_running(workspace: Workspace) -> None:
    first_line_seen = threading.Event()

    class Watcher(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "first-line" in record.getMessage():
                first_line_seen.set()

    workspace.logger.addHandler(Watcher())
    template = workspace.template(
        "echo first-line", "while [ ! -f release ]; do sleep 0.05; done", "echo last-line"
    )
    runner = workspace.runner()
    build = threading.Thread(
        target=runner.build, args=(template,), kwargs={"manifest_path": workspace.manifest}
    )
    build.start()
    try:
        # The provisioner cannot finish before the release file exists, so seeing the
        # first line now proves the output was streamed, not collected at the end.
        assert first_line_seen.wait(timeout=20)
        assert build.is_alive()
        assert "last-line" not in workspace.log.text
    finally:
        (workspace.dir / "release").touch()
        build.join(timeout=30)
    assert "    bake.null.web: last-line" in workspace.log.messages(logging.INFO)


def test_missing_manifest_post_processor_is_explained(workspace: Workspace) -> None:
    template = workspace.template("true", manifest=False)
    # A manifest from an earlier run must not be mistaken for this run's.
    workspace.manifest.write_text(
        json.dumps({"builds": [], "last_run_uuid": "an-earlier-run"}), encoding="utf-8"
    )

    with pytest.raises(PackerError) as excinfo:
        workspace.runner().build(template, manifest_path=workspace.manifest)

    message = str(excinfo.value)
    assert 'post-processor "manifest"' in message
    assert f'output = "{workspace.manifest}"' in message


def test_validate_rejects_an_invalid_template_with_packers_reason(workspace: Workspace) -> None:
    template = workspace.dir / "broken.pkr.hcl"
    template.write_text(
        'source "null" "x" {\n  communicator = "none"\n  colour = "red"\n}\n'
        'build { sources = ["source.null.x"] }\n'
    )

    with pytest.raises(PackerError) as excinfo:
        workspace.runner().validate(template)

    message = str(excinfo.value)
    assert message.startswith(f"Packer template {template} is invalid: Error: ")
    assert 'An argument named "colour" is not expected here.' in message
    assert excinfo.value.exit_code == 1


def test_validate_passes_the_var_file(workspace: Workspace) -> None:
    template = workspace.dir / "needs-var.pkr.hcl"
    template.write_text(
        'variable "region" { type = string }\n'
        'source "null" "x" { communicator = "none" }\n'
        'build { sources = ["source.null.x"] }\n'
    )
    var_file = workspace.dir / "vars.pkrvars.hcl"
    var_file.write_text('region = "us-east-1"\n')
    runner = workspace.runner()

    with pytest.raises(PackerError, match='Unset variable "region"'):
        runner.validate(template)
    runner.validate(template, var_file=var_file)  # raises if the var-file was not passed


def test_missing_packer_binary_says_how_to_install_it(workspace: Workspace) -> None:
    runner = PackerRunner(
        packer_binary="packer-does-not-exist",
        working_dir=workspace.dir,
        env=workspace.env(),
        timeout_seconds=10,
        logger=workspace.logger,
    )

    with pytest.raises(PackerError, match="apt-get install packer") as excinfo:
        runner.build(workspace.template(), manifest_path=workspace.manifest)

    assert "'packer-does-not-exist' was not found" in str(excinfo.value)


def test_cancel_when_nothing_runs_is_a_no_op(workspace: Workspace) -> None:
    runner = workspace.runner()
    runner.cancel()

    result = runner.build(workspace.template("true"), manifest_path=workspace.manifest)
    runner.cancel()

    assert len(result.artifacts) == 1


def test_no_process_is_left_behind_after_a_build(workspace: Workspace) -> None:
    template = workspace.template(RECORD_PGID, "(sleep 30 >/dev/null 2>&1 &)")

    workspace.runner().build(template, manifest_path=workspace.manifest)

    wait_until(lambda: live_processes_in_group(workspace.pgid()) == [], timeout=5)
