"""Names shared by the DAGs, operators and adapters, kept in one place."""

from __future__ import annotations

import os
from pathlib import Path

TAG_PREFIX = "bakery:"
TAG_MANAGED = f"{TAG_PREFIX}managed"
TAG_IMAGE = f"{TAG_PREFIX}image"
TAG_BAKE_ID = f"{TAG_PREFIX}bake-id"
TAG_SOURCE_IMAGE = f"{TAG_PREFIX}source-image"
TAG_TEMPLATE_HASH = f"{TAG_PREFIX}template-hash"
TAG_DAG_RUN_ID = f"{TAG_PREFIX}dag-run-id"
TAG_ROLE = f"{TAG_PREFIX}role"
TAG_SMOKE = f"{TAG_PREFIX}smoke"
TAG_CHANNEL = f"{TAG_PREFIX}channel"
TAG_PROMOTED_AT = f"{TAG_PREFIX}promoted-at"
TAG_SUPERSEDED_AT = f"{TAG_PREFIX}superseded-at"
TAG_ROLLED_BACK_AT = f"{TAG_PREFIX}rolled-back-at"
TAG_COPIED_FROM = f"{TAG_PREFIX}copied-from"
# Azure: a gallery version lives in the gallery's region; this names the catalog location
# it was baked for.
TAG_LOCATION = f"{TAG_PREFIX}location"

BAKE_DAG_ID = "golden_image_bake"
AUDIT_DAG_ID = "golden_image_audit"
ROLLBACK_DAG_ID = "golden_image_rollback"
REAPER_DAG_ID = "golden_image_reaper"

DEFAULT_CATALOG_FILENAME = "catalog.yaml"


def include_dir() -> Path:
    """Folder holding the catalog and Packer templates.

    Deployments lay out dags/, plugins/ and include/ side by side (the Astronomer
    layout); BAKERY_INCLUDE_DIR overrides that for other layouts.
    """
    override = os.environ.get("BAKERY_INCLUDE_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "include"


def catalog_path() -> Path:
    override = os.environ.get("BAKERY_CATALOG")
    if override:
        return Path(override)
    return include_dir() / DEFAULT_CATALOG_FILENAME
