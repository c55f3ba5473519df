"""The freshness report as a JSON document, and where it is written for other tools.

The schema is documented in README.md ("Freshness report (JSON)"); bump SCHEMA_VERSION
when a field changes meaning or goes away (adding a field needs no bump).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bakery.freshness import FreshnessResult, format_time, summarize
from bakery.targets import target_rows

SCHEMA_VERSION = 1
REPORT_FILENAME = "freshness.json"


def default_report_path() -> Path:
    """`$BAKERY_REPORT_DIR/freshness.json`, else `$AIRFLOW_HOME/bakery/freshness.json`
    (AIRFLOW_HOME defaulting to ~/airflow as Airflow's does)."""
    override = os.environ.get("BAKERY_REPORT_DIR")
    if override:
        return Path(override) / REPORT_FILENAME
    home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    return Path(home) / "bakery" / REPORT_FILENAME


def report_row(result: FreshnessResult) -> dict[str, Any]:
    return {
        "image": result.image,
        "cloud": result.cloud,
        "region": result.region,
        "image_id": result.image_id,
        "name": result.name,
        "created": format_time(result.created) if result.created else None,
        "age_days": result.age_days,
        "status": result.status.value,
        "threshold_days": result.threshold_days,
        "channel": result.channel,
        "current": result.current,
        "source_image_id": result.source_image_id,
        "source_age_days": result.source_age_days,
        "in_use_by": result.in_use_by,
        "superseded_by": result.superseded_by,
        "smoke": result.smoke,
        "promoted_at": result.promoted_at,
        "superseded_at": result.superseded_at,
        "dag_run_id": result.dag_run_id,
    }


def build_report(
    results: Sequence[FreshnessResult],
    *,
    generated_at: datetime,
    thresholds: Mapping[str, int],
    default_threshold: int,
    override: int | None,
    inventory: Mapping[str, Any] | None = None,
    broken: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The whole document: when, with which thresholds, counts, re-bake list, every row,
    and the targets whose bake has failed too many runs in a row (`broken`)."""
    summary = summarize(list(results), generated_at=generated_at)
    broken_targets = {(b["image"], b["cloud"], b["region"]) for b in broken}
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": summary["generated_at"],
        "stale_after_days": {
            "default": default_threshold,
            "override": override,
            "by_image": dict(thresholds),
        },
        "total": summary["total"],
        "counts": summary["counts"],
        "rebake": summary["rebake"],
        "inventory": dict(inventory or {}),
        "rows": [
            {**report_row(result), "broken": result.target in broken_targets} for result in results
        ],
        "targets": [
            {**row, "broken": (row["image"], row["cloud"], row["region"]) in broken_targets}
            for row in target_rows(results)
        ],
        "broken": [dict(item) for item in broken],
    }


def write_report(report: Mapping[str, Any], path: Path) -> Path:
    """Write atomically: readers (a UI page, another tool) see the old file or the new one,
    never half of one. The temporary file sits next to the target so the rename stays on
    one file system."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(report, stream, indent=2)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; other tools must read it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
