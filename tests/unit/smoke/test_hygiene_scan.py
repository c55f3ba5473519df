"""The hygiene scan script, run for real by `sh` against a folder laid out like an image."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from bakery.smoke.hygiene import (
    MIN_SECRET_LENGTH,
    Finding,
    HygieneInput,
    parse_findings,
    scan_script,
    scannable_secrets,
    verdict,
)

LAUNCH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlaunchkeylaunchkey smoke@bakery"
BUILDER_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQbuilderkey packer_6562@builder"
FEED_TOKEN = "fEEd-t0ken-$(rm -rf /)-'quoted'-\"double\""
PEM_HEADER = "-----BEGIN OPENSSH PRIVATE KEY-----"
INSTANCE_ID = "i-0smoke0000000001"


def write(root: Path, relative: str, content: str, *, mtime: float | None = None) -> Path:
    path = root / relative.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def clean_root(tmp_path: Path) -> Path:
    """What a well-cleaned image looks like after its first boot."""
    root = tmp_path / "root"
    write(root, "/home/admin/.ssh/authorized_keys", LAUNCH_KEY + "\n")
    write(root, "/etc/ssh/ssh_host_ed25519_key", f"{PEM_HEADER}\nhostkey\n")
    write(root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    write(root, "/usr/bin/cloud-init", "#!/bin/sh\n").chmod(0o755)
    (root / "var/lib/cloud/instances" / INSTANCE_ID).mkdir(parents=True)
    write(root, "/root/.bash_history", "")
    write(root, "/var/www/html/index.html", "Baked with Packer\n")
    return root


def scan(root: Path, **overrides: object) -> list[Finding]:
    launched_at = int(overrides.pop("launched_at", int(time.time()) - 60))  # type: ignore[call-overload]
    fields: dict[str, object] = {
        "launch_key": LAUNCH_KEY,
        "secrets": (FEED_TOKEN,),
        "allow_paths": ("/etc/ssh/ssh_host_*_key",),
    }
    fields.update(overrides)
    script = scan_script(
        HygieneInput(**fields),  # type: ignore[arg-type]
        instance_id=INSTANCE_ID,
        launched_at=launched_at,
        root=str(root),
    )
    result = subprocess.run(
        ["sh", "-s"], input=script, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert FEED_TOKEN not in result.stdout + result.stderr
    return parse_findings(result.stdout)


def test_a_clean_image_has_no_findings(clean_root: Path) -> None:
    assert scan(clean_root) == []


def test_a_planted_private_key_and_secret_value_are_named_by_path(clean_root: Path) -> None:
    write(clean_root, "/opt/app/deploy.pem", f"{PEM_HEADER}\nb3BlbnNzaC1rZXk\n")
    write(clean_root, "/etc/app/feed.conf", f"token={FEED_TOKEN}\n")

    findings = scan(clean_root)

    assert set(findings) == {
        Finding("private-key", "/opt/app/deploy.pem"),
        Finding("secret-value", "/etc/app/feed.conf"),
    }


def test_the_builders_key_left_in_authorized_keys_is_found(clean_root: Path) -> None:
    write(clean_root, "/home/admin/.ssh/authorized_keys", f"{BUILDER_KEY}\n{LAUNCH_KEY}\n")

    assert scan(clean_root) == [
        Finding("foreign-authorized-key", "/home/admin/.ssh/authorized_keys")
    ]


def test_cloud_credentials_access_keys_and_histories_are_found(clean_root: Path) -> None:
    write(clean_root, "/root/.aws/credentials", "[default]\n")
    write(clean_root, "/home/admin/.ssh/id_ed25519.pub", "ssh-ed25519 AAAA\n")
    write(clean_root, "/etc/profile.d/env.sh", "export KEY=AKIAABCDEFGHIJKLMNOP\n")
    write(clean_root, "/home/admin/.bash_history", "curl -H token ...\n")

    assert set(scan(clean_root)) == {
        Finding("cloud-credentials-file", "/root/.aws/credentials"),
        Finding("cloud-credentials-file", "/home/admin/.ssh/id_ed25519.pub"),
        Finding("aws-access-key-id", "/etc/profile.d/env.sh"),
        Finding("shell-history", "/home/admin/.bash_history"),
    }


def test_a_machine_id_written_before_launch_was_baked_in(clean_root: Path) -> None:
    launched = int(time.time()) - 60
    write(clean_root, "/etc/machine-id", "feedfacefeedface\n", mtime=launched - 3600)

    assert scan(clean_root, launched_at=launched) == [
        Finding("machine-id-baked", "/etc/machine-id")
    ]


def test_cloud_init_state_of_another_instance_was_baked_in(clean_root: Path) -> None:
    (clean_root / "var/lib/cloud/instances/i-0builder00000000").mkdir(parents=True)

    assert scan(clean_root) == [
        Finding("cloud-init-not-clean", "/var/lib/cloud/instances/i-0builder00000000")
    ]


def test_an_image_without_cloud_init_is_a_finding_unless_not_expected(
    clean_root: Path,
) -> None:
    (clean_root / "usr/bin/cloud-init").unlink()

    assert scan(clean_root) == [Finding("cloud-init-missing", "/usr/bin/cloud-init")]
    assert scan(clean_root, expect_cloud_init=False) == []


def test_allow_paths_exempt_keys_but_never_a_secret_value(clean_root: Path) -> None:
    write(clean_root, "/opt/vendor/test-vector.pem", f"{PEM_HEADER}\nvector {FEED_TOKEN}\n")

    findings = scan(clean_root, allow_paths=("/etc/ssh/ssh_host_*_key", "/opt/vendor/*"))

    assert findings == [Finding("secret-value", "/opt/vendor/test-vector.pem")]


def test_the_launch_key_behind_options_is_not_foreign(clean_root: Path) -> None:
    """cloud-init writes root's entry as `no-port-forwarding,...,command="..." KEY`."""
    write(
        clean_root, "/root/.ssh/authorized_keys", f'no-pty,command="echo use admin" {LAUNCH_KEY}\n'
    )

    assert scan(clean_root) == []


def test_bytecode_of_an_unchanged_packaged_module_is_not_a_finding(clean_root: Path) -> None:
    source = write(
        clean_root, "/usr/lib/python3/dist-packages/tool/keys.py", f"H = '{PEM_HEADER}'\n"
    )
    write(
        clean_root,
        "/usr/lib/python3/dist-packages/tool/__pycache__/keys.cpython-311.pyc",
        PEM_HEADER,
    )
    digest = hashlib.md5(source.read_bytes()).hexdigest()  # noqa: S324 - dpkg's own format
    write(
        clean_root,
        "/var/lib/dpkg/info/tool.md5sums",
        f"{digest}  usr/lib/python3/dist-packages/tool/keys.py\n",
    )
    assert scan(clean_root) == []

    source.write_text("H = 'edited'\n")
    assert set(scan(clean_root)) == {
        Finding(
            "private-key", "/usr/lib/python3/dist-packages/tool/__pycache__/keys.cpython-311.pyc"
        )
    }


def test_a_key_a_package_installed_unchanged_is_not_a_finding(clean_root: Path) -> None:
    vector = write(clean_root, "/usr/share/doc/pkg/example.pem", f"{PEM_HEADER}\nexample\n")
    digest = hashlib.md5(vector.read_bytes()).hexdigest()  # noqa: S324 - dpkg's own format
    write(
        clean_root, "/var/lib/dpkg/info/pkg.md5sums", f"{digest}  usr/share/doc/pkg/example.pem\n"
    )
    assert scan(clean_root) == []

    vector.write_text(f"{PEM_HEADER}\nchanged after install\n")
    assert scan(clean_root) == [Finding("private-key", "/usr/share/doc/pkg/example.pem")]


def test_short_secret_values_are_not_searched_for_and_are_counted() -> None:
    usable, skipped = scannable_secrets(["x" * MIN_SECRET_LENGTH, "short", "", "a\nb" * 5])

    assert usable == ("x" * MIN_SECRET_LENGTH,)
    assert skipped == 2


def test_the_verdict_names_rules_and_paths_only() -> None:
    result = verdict([Finding("secret-value", "/etc/app/feed.conf")], exit_code=0)

    assert not result.passed
    assert "/etc/app/feed.conf" in result.seen and "secret-value" in result.seen
    assert verdict([], exit_code=0).passed
    assert not verdict([], exit_code=2).passed
