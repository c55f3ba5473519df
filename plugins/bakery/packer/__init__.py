"""Running HashiCorp Packer: validate and build templates, read the artifacts they produce.

Pure standard library, so it can be tested without Airflow; operators hand it a logger.
"""

from __future__ import annotations

from bakery.packer.errors import PackerCancelledError, PackerError, PackerTimeoutError
from bakery.packer.machine_readable import MachineReadableLine, parse_line
from bakery.packer.manifest import PackerArtifact, parse_manifest
from bakery.packer.runner import PackerResult, PackerRunner

__all__ = [
    "MachineReadableLine",
    "PackerArtifact",
    "PackerCancelledError",
    "PackerError",
    "PackerResult",
    "PackerRunner",
    "PackerTimeoutError",
    "parse_line",
    "parse_manifest",
]
