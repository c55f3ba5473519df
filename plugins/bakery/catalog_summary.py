"""What DAG files need from the catalog at parse time, cached by the catalog's bytes.

The DAG processor re-parses every DAG file every few seconds; reading and validating a
large catalog each time (YAML plus pydantic) would dominate that. `load_catalog_summary`
returns the image names, regions and (connection, region) locations from a small JSON
cache when the catalog file is byte-for-byte the one that last validated, and every
template it names still exists. Otherwise it runs the full `load_catalog` validation, so
a bad catalog fails the DAG import with the same `CatalogError` every time (a failed
validation is never cached), and caches the summary of a good one.

This module must stay cheap to import: `bakery.catalog` (pydantic models) is imported
only on a cache miss. Any problem with the cache itself (unreadable, corrupt, unwritable
directory) falls back to full validation silently; the cache can never fail a parse.
Tasks keep calling `load_catalog()` and always validate.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakery.channels import asset_uri
from bakery.constants import catalog_path

if TYPE_CHECKING:
    from bakery.catalog import Catalog

log = logging.getLogger(__name__)

# Bump when the cache file's layout or the meaning of its fields changes. Changes to the
# validation code need no bump: the source of the modules below is part of the cache key.
CACHE_VERSION = 1
_KEYED_SOURCES = ("catalog.py", "catalog_summary.py")


@dataclass(frozen=True)
class CatalogSummary:
    """The parts of a validated catalog a DAG file needs to build its DAG."""

    image_names: tuple[str, ...]  # catalog order
    regions: tuple[str, ...]  # sorted; every region of every image in every cloud
    locations: tuple[tuple[str, str], ...]  # sorted (AWS connection id, region) pairs
    assets: tuple[str, ...]  # sorted; the promotion Asset URI of every image x cloud
    # Every file the images name, as `load_catalog` checks them; re-checked on a hit.
    template_paths: tuple[str, ...]

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> CatalogSummary:
        targets = catalog.bake_targets()
        return cls(
            image_names=tuple(image.name for image in catalog.images),
            regions=tuple(sorted({target.region for target in targets})),
            locations=tuple(
                sorted(
                    {
                        (image.targets.aws.connection_id, region)
                        for image in catalog.images
                        if image.targets.aws is not None
                        for region in image.targets.aws.regions
                    }
                )
            ),
            assets=tuple(
                sorted({asset_uri(target.cloud.value, target.image) for target in targets})
            ),
            template_paths=tuple(
                dict.fromkeys(
                    str(file)
                    for image in catalog.images
                    for file in catalog.referenced_files(image).values()
                )
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "image_names": list(self.image_names),
            "regions": list(self.regions),
            "locations": [list(location) for location in self.locations],
            "assets": list(self.assets),
            "template_paths": list(self.template_paths),
        }

    @classmethod
    def from_json(cls, data: Any) -> CatalogSummary:
        """Strict: anything but the exact shape `to_json` writes raises ValueError."""

        def strings(value: Any, size: int | None = None) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"expected a list of strings, got {value!r}")
            if size is not None and len(value) != size:
                raise ValueError(f"expected {size} strings, got {value!r}")
            return tuple(value)

        if not isinstance(data, dict) or not isinstance(data.get("locations"), list):
            raise ValueError("not a catalog summary")
        pairs = [strings(location, 2) for location in data["locations"]]
        return cls(
            image_names=strings(data.get("image_names")),
            regions=strings(data.get("regions")),
            locations=tuple((connection_id, region) for connection_id, region in pairs),
            assets=strings(data.get("assets")),
            template_paths=strings(data.get("template_paths")),
        )


def cache_dir() -> Path:
    """BAKERY_CACHE_DIR, else $AIRFLOW_HOME/.bakery-cache, else ~/.cache/bakery."""
    override = os.environ.get("BAKERY_CACHE_DIR")
    if override:
        return Path(override)
    airflow_home = os.environ.get("AIRFLOW_HOME")
    if airflow_home:
        return Path(airflow_home) / ".bakery-cache"
    return Path.home() / ".cache" / "bakery"


def _cache_file(catalog: Path) -> Path:
    digest = hashlib.sha256(os.path.abspath(catalog).encode()).hexdigest()[:16]
    return cache_dir() / f"catalog-summary-{digest}.json"


def _cache_key(catalog: Path, content: bytes) -> str:
    """The catalog's path and bytes, and the code that validated them."""
    key = hashlib.sha256(f"v{CACHE_VERSION}\0{os.path.abspath(catalog)}\0".encode())
    here = Path(__file__).parent
    for name in _KEYED_SOURCES:
        key.update((here / name).read_bytes())
        key.update(b"\0")
    key.update(content)
    return key.hexdigest()


def _read_cached(cache_file: Path, key: str) -> CatalogSummary | None:
    """The cached summary if its key matches and every template it names is still there;
    raises on a cache file that cannot be read or parsed."""
    try:
        with cache_file.open(encoding="utf-8") as handle:
            entry = json.load(handle)
    except FileNotFoundError:
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    summary = CatalogSummary.from_json(entry.get("summary"))
    if not all(Path(template).is_file() for template in summary.template_paths):
        return None  # load_catalog names the missing template
    return summary


def _write_cached(cache_file: Path, key: str, summary: CatalogSummary) -> None:
    """Write atomically (temporary file + rename): parsers running at the same time see
    the old entry or the new one, never half of one."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=cache_file.parent, prefix=f".{cache_file.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"key": key, "summary": summary.to_json()}, handle)
        os.replace(tmp_name, cache_file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _cache_entry(path: Path) -> tuple[Path, str, bytes]:
    """Where the summary of the catalog at `path` is cached, under which key, and the
    catalog bytes that key was computed from."""
    content = path.read_bytes()
    return _cache_file(path), _cache_key(path, content), content


def load_catalog_summary(path: Path | None = None) -> CatalogSummary:
    """The catalog's summary, from the cache when the catalog is unchanged, else from a
    full `load_catalog` (raising its CatalogError for a bad catalog)."""
    path = path or catalog_path()
    # The cache must never fail a parse: on any problem with it, validate instead.
    entry: tuple[Path, str, bytes] | None = None
    try:
        entry = _cache_entry(path)
        cached = _read_cached(*entry[:2])
    except Exception as exc:
        log.debug("not using the catalog summary cache for %s: %s", path, exc)
    else:
        if cached is not None:
            return cached

    # Looked up on the module at call time (tests count calls), and imported only here:
    # it brings in pydantic and builds the models, which a cache hit never needs.
    from bakery import catalog as catalog_module

    summary = CatalogSummary.from_catalog(catalog_module.load_catalog(path))
    if entry is not None:
        cache_file, key, content = entry
        try:
            # A catalog edited while it was being validated must not be cached under
            # the key of its old content.
            if path.read_bytes() == content:
                _write_cached(cache_file, key, summary)
        except Exception as exc:
            log.debug("could not write the catalog summary cache %s: %s", cache_file, exc)
    return summary
