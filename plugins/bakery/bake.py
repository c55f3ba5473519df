"""Pure decisions about one bake: its id, its tags, its template hash, its variables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from bakery.catalog import AwsTarget, BakeTarget, Image
from bakery.constants import (
    TAG_BAKE_ID,
    TAG_DAG_RUN_ID,
    TAG_IMAGE,
    TAG_MANAGED,
    TAG_SOURCE_IMAGE,
    TAG_TEMPLATE_HASH,
)


def bake_id(*, dag_id: str, run_id: str, target: BakeTarget) -> str:
    """Stable for one target in one DAG run, so a retried task finds its earlier image."""
    digest = hashlib.sha256(f"{dag_id}\0{run_id}\0{target.label}".encode()).hexdigest()
    return f"bk-{digest[:16]}"


def _is_file(path: Path) -> bool:
    """Path.is_file, but False for values that cannot be a path (e.g. a component longer
    than the OS allows), which Path.is_file raises on before Python 3.14."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def resolve_variables(
    variables: Mapping[str, str | int | bool], include_dir: Path
) -> dict[str, str | int | bool]:
    """Catalog variables naming a file under include/ become absolute paths for Packer."""
    resolved: dict[str, str | int | bool] = {}
    for name, value in variables.items():
        candidate = include_dir / value if isinstance(value, str) else None
        resolved[name] = str(candidate) if candidate is not None and _is_file(candidate) else value
    return resolved


def image_variables(image: Image, include_dir: Path) -> dict[str, str | int | bool]:
    """What every bake of `image`, in any cloud, passes to its template: the catalog's
    variables and the clean-up script, as absolute paths where they name files under
    `include_dir`, so that a change to either changes the template hash."""
    resolved = resolve_variables(image.variables, include_dir)
    return {**resolved, "cleanup_script": str(include_dir / image.cleanup_script)}


def template_hash(template: Path, variables: Mapping[str, str | int | bool]) -> str:
    """Changes when the template, a variable or a file a variable names changes."""
    digest = hashlib.sha256(template.read_bytes())
    for name in sorted(variables):
        value = variables[name]
        if isinstance(value, str) and Path(value).is_absolute() and _is_file(Path(value)):
            # The file's content, not where the deployment keeps it, defines the image.
            digest.update(f"\0{name}=file:{Path(value).name}\0".encode())
            digest.update(Path(value).read_bytes())
        else:
            digest.update(f"\0{name}={value}".encode())
    return digest.hexdigest()[:16]


# The weekly schedule re-bakes an unchanged image this many days before it would go stale,
# so a target never turns STALE between two weekly runs.
REBAKE_MARGIN_DAYS = 7


def unchanged_reason(
    *,
    current_tags: Mapping[str, str] | None,
    current_age_days: int | None,
    template_digest: str,
    source_image_id: str,
    freshness_days: int,
) -> str | None:
    """Why a target need not be baked now, or None when it must be (a run without `force`).

    A target is unchanged when its channel's current image was baked from the same
    template hash and the same source image, and is young enough to stay fresh until the
    next weekly run (at most `freshness_days - REBAKE_MARGIN_DAYS` whole days old).
    """
    if current_tags is None or current_age_days is None:
        return None
    if current_tags.get(TAG_TEMPLATE_HASH) != template_digest:
        return None
    if current_tags.get(TAG_SOURCE_IMAGE) != source_image_id:
        return None
    if current_age_days > freshness_days - REBAKE_MARGIN_DAYS:
        return None
    return (
        f"the current image was baked {current_age_days} day(s) ago from the same template"
        f" ({template_digest}) and source image ({source_image_id}); it stays fresh until the"
        " next weekly run"
    )


def bake_tags(
    *, image: Image, bake: str, source_image_id: str, template_digest: str, dag_run_id: str
) -> dict[str, str]:
    return {
        TAG_MANAGED: "true",
        TAG_IMAGE: image.name,
        TAG_BAKE_ID: bake,
        TAG_SOURCE_IMAGE: source_image_id,
        TAG_TEMPLATE_HASH: template_digest,
        TAG_DAG_RUN_ID: dag_run_id,
    }


def artifact_name(image: Image, *, started: datetime, bake: str) -> str:
    """Unique per bake and sortable by time, e.g. bakery-web-20261122-220000-3f2a9c1d."""
    return f"bakery-{image.name}-{started:%Y%m%d-%H%M%S}-{bake.removeprefix('bk-')[:8]}"


def write_var_file(path: Path, variables: Mapping[str, object]) -> Path:
    path.write_text(json.dumps(dict(variables), indent=2, sort_keys=True))
    return path


def aws_packer_variables(
    *,
    variables: Mapping[str, str | int | bool],
    aws: AwsTarget,
    region: str,
    ami_name: str,
    source_ami_id: str,
    subnet_id: str,
    ec2_endpoint: str,
    manifest_path: Path,
    tags: Mapping[str, str],
) -> dict[str, object]:
    """The var-file of include/packer/aws-linux.pkr.hcl: the catalog's variables plus
    what bakery decided for this bake."""
    return {
        **variables,
        "region": region,
        "ami_name": ami_name,
        "source_ami_id": source_ami_id,
        "instance_type": aws.instance_type,
        "ssh_username": aws.ssh_username,
        "ssh_interface": aws.ssh_interface,
        "subnet_id": subnet_id,
        "volume_size_gb": aws.volume_size_gb,
        "ec2_endpoint": ec2_endpoint,
        "manifest_path": str(manifest_path),
        "tags": dict(tags),
    }
