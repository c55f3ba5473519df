"""Reading the file Packer's `manifest` post-processor writes into typed artifacts.

The manifest accumulates the builds of every run that wrote to it:

    {"builds": [{"name": "web", "builder_type": "amazon-ebs", "build_time": 1700000000,
                 "files": null, "artifact_id": "us-east-1:ami-123,eu-west-1:ami-456",
                 "packer_run_uuid": "...", "custom_data": {...}}],
     "last_run_uuid": "..."}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.packer.errors import PackerError

# AWS-style region names ("us-east-1", "us-gov-west-1", "cn-north-1"). An artifact id is
# split into region-qualified images only when every part starts with one, so that ids
# holding a colon for another reason ("sha256:...") are kept whole.
_REGION_QUALIFIED_ID = re.compile(r"^(?P<region>[a-z]{2,}(?:-[a-z0-9]+)+):(?P<image_id>\S+)$")


@dataclass(frozen=True)
class PackerArtifact:
    """One image a build produced; an AMI copied to several regions gives one per region."""

    build_name: str
    builder_type: str
    image_id: str
    region: str | None
    # A plain dict keeps artifacts picklable and JSON-friendly; excluded from the hash
    # because a dict cannot be hashed.
    custom_data: Mapping[str, str] = field(default_factory=dict, hash=False)


def parse_manifest(path: Path, *, run_uuid: str | None = None) -> tuple[PackerArtifact, ...]:
    """The artifacts of one run recorded in a Packer manifest.

    The run is `run_uuid` when given, else the manifest's `last_run_uuid`; builds left
    in the file by earlier runs are ignored.
    """
    document = _load(path)
    run = run_uuid if run_uuid is not None else document.get("last_run_uuid")
    builds = document.get("builds")
    if not isinstance(builds, list):
        raise PackerError(f"Packer manifest {path} has no 'builds' list")
    artifacts: list[PackerArtifact] = []
    for build in builds:
        if not isinstance(build, dict):
            raise PackerError(f"Packer manifest {path} has a build that is not an object")
        if run is not None and build.get("packer_run_uuid") != run:
            continue
        artifacts.extend(_artifacts_of(build, path))
    return tuple(artifacts)


def read_last_run_uuid(path: Path) -> str | None:
    """The manifest's `last_run_uuid`, or None when the file does not exist yet."""
    if not path.exists():
        return None
    value = _load(path).get("last_run_uuid")
    return value if isinstance(value, str) else None


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackerError(f"Packer manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackerError(f"Packer manifest {path} cannot be read: {exc}") from exc
    if not isinstance(document, dict):
        raise PackerError(f"Packer manifest {path} is not a JSON object")
    return document


def _artifacts_of(build: Mapping[str, Any], path: Path) -> list[PackerArtifact]:
    name = build.get("name")
    builder_type = build.get("builder_type")
    artifact_id = build.get("artifact_id")
    if not (isinstance(name, str) and isinstance(builder_type, str)):
        raise PackerError(f"Packer manifest {path} has a build without name or builder_type")
    if not isinstance(artifact_id, str) or not artifact_id:
        raise PackerError(f"Packer manifest {path}: build {name!r} has no artifact_id")
    raw_custom_data = build.get("custom_data") or {}
    if not isinstance(raw_custom_data, dict):
        raise PackerError(
            f"Packer manifest {path}: build {name!r} has custom_data that is not an object"
        )
    custom_data = {str(k): str(v) for k, v in raw_custom_data.items()}
    return [
        PackerArtifact(
            build_name=name,
            builder_type=builder_type,
            image_id=image_id,
            region=region,
            custom_data=dict(custom_data),
        )
        for region, image_id in _split_artifact_id(artifact_id)
    ]


def _split_artifact_id(artifact_id: str) -> list[tuple[str | None, str]]:
    matches = [_REGION_QUALIFIED_ID.match(part) for part in artifact_id.split(",")]
    if all(matches):
        return [(m["region"], m["image_id"]) for m in matches if m is not None]
    return [(None, artifact_id)]
