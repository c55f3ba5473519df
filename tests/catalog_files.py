"""Files every test catalog needs besides its templates."""

from __future__ import annotations

from pathlib import Path

from bakery.catalog import DEFAULT_CLEANUP_SCRIPT


def write_cleanup_script(include: Path) -> Path:
    """The default `cleanup_script` every catalog image names, under `include`."""
    path = include / DEFAULT_CLEANUP_SCRIPT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    return path
