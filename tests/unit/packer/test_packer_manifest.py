from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bakery.packer import PackerArtifact, PackerError, parse_manifest


def write_manifest(path: Path, builds: list[dict[str, Any]], last_run_uuid: str) -> Path:
    path.write_text(json.dumps({"builds": builds, "last_run_uuid": last_run_uuid}))
    return path


def build_entry(run: str, artifact_id: str, **overrides: Any) -> dict[str, Any]:
    entry = {
        "name": "web",
        "builder_type": "amazon-ebs",
        "build_time": 1700000000,
        "files": None,
        "artifact_id": artifact_id,
        "packer_run_uuid": run,
        "custom_data": {"image": "web"},
    }
    entry.update(overrides)
    return entry


def test_multi_region_artifact_id_gives_one_artifact_per_region(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "m.json",
        [build_entry("run-1", "us-east-1:ami-123,eu-west-1:ami-456")],
        "run-1",
    )

    assert parse_manifest(manifest) == (
        PackerArtifact(
            build_name="web",
            builder_type="amazon-ebs",
            image_id="ami-123",
            region="us-east-1",
            custom_data={"image": "web"},
        ),
        PackerArtifact(
            build_name="web",
            builder_type="amazon-ebs",
            image_id="ami-456",
            region="eu-west-1",
            custom_data={"image": "web"},
        ),
    )


def test_only_builds_of_the_last_run_are_returned(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "m.json",
        [
            build_entry("run-1", "us-east-1:ami-old"),
            build_entry("run-2", "us-east-1:ami-new", name="db"),
        ],
        "run-2",
    )

    artifacts = parse_manifest(manifest)

    assert [(a.build_name, a.image_id) for a in artifacts] == [("db", "ami-new")]


def test_explicit_run_uuid_selects_that_run(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "m.json",
        [build_entry("run-1", "us-east-1:ami-old"), build_entry("run-2", "us-east-1:ami-new")],
        "run-2",
    )

    assert [a.image_id for a in parse_manifest(manifest, run_uuid="run-1")] == ["ami-old"]


def test_ids_without_region_prefix_are_kept_whole(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "m.json",
        [
            build_entry("r", "Null", builder_type="null", custom_data=None),
            build_entry("r", "sha256:4f5e1a", builder_type="docker"),
        ],
        "r",
    )

    artifacts = parse_manifest(manifest)

    assert [(a.image_id, a.region) for a in artifacts] == [("Null", None), ("sha256:4f5e1a", None)]
    assert artifacts[0].custom_data == {}


def test_artifacts_are_hashable_despite_custom_data(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.json", [build_entry("r", "us-east-1:ami-1")], "r")

    (artifact,) = parse_manifest(manifest)

    assert {artifact: 1}[artifact] == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "cannot be read"),
        ("[]", "is not a JSON object"),
        ('{"last_run_uuid": "r"}', "has no 'builds' list"),
        ('{"builds": [{"name": "web", "builder_type": "null"}]}', "has no artifact_id"),
    ],
)
def test_broken_manifest_raises_packer_error_naming_the_file(
    tmp_path: Path, content: str, problem: str
) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(content)

    with pytest.raises(PackerError, match=problem) as excinfo:
        parse_manifest(manifest)

    assert str(manifest) in str(excinfo.value)


def test_missing_manifest_raises_packer_error(tmp_path: Path) -> None:
    with pytest.raises(PackerError, match="does not exist"):
        parse_manifest(tmp_path / "absent.json")
