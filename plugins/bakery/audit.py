"""Gather bakery's images from every cloud and region and report their freshness.

Runs in the audit DAG (`run_and_report`) and from a laptop alike:
`python -m bakery.audit [--json] [--write PATH] [--stale-after-days N]`, which reads
connections from `AIRFLOW_CONN_*` environment variables.

Every (connection, region) the catalog names is listed concurrently, one thread each
(bounded): a region's listing is a few paginated calls (bakery's AMIs by tag, the
instances and launch templates that use them, the source images they were baked from in
batches), never one call per image, so an audit of many regions takes about as long as
its slowest region.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum

from bakery.catalog import Catalog, Image, load_catalog
from bakery.channels import tag_value
from bakery.constants import (
    TAG_CHANNEL,
    TAG_DAG_RUN_ID,
    TAG_IMAGE,
    TAG_PROMOTED_AT,
    TAG_ROLLED_BACK_AT,
    TAG_SMOKE,
    TAG_SOURCE_IMAGE,
    TAG_SUPERSEDED_AT,
)
from bakery.freshness import (
    FreshnessResult,
    ImageRecord,
    assess,
    render_text,
    stale_alert,
    summarize,
)
from bakery.report import build_report, default_report_path, write_report

log = logging.getLogger(__name__)

# Threads wait on the network, not the CPU; the bound only protects API rate limits when
# a catalog names very many (connection, region) pairs.
MAX_GATHER_WORKERS = 16


@dataclass(frozen=True, order=True)
class Location:
    """Where images are listed: one connection (account) in one region."""

    connection_id: str
    region: str
    cloud: str = "aws"

    @property
    def label(self) -> str:
        return f"{self.connection_id}/{self.region}"


@dataclass(frozen=True)
class LocationInventory:
    """What one location holds, and what listing it cost."""

    location: Location
    records: list[ImageRecord]
    sources: dict[str, datetime]  # source image id -> creation time, as far as found
    api_calls: Counter[str]
    seconds: float


@dataclass(frozen=True)
class Inventory:
    """bakery's images across every location, with source ages filled in."""

    records: list[ImageRecord]
    locations: list[LocationInventory] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def api_calls(self) -> int:
        return sum(sum(location.api_calls.values()) for location in self.locations)

    def stats(self) -> dict[str, Any]:
        """For the JSON report: what was listed where, and the calls it took."""
        return {
            "api_calls": self.api_calls,
            "seconds": round(self.seconds, 3),
            "locations": [
                {
                    "cloud": item.location.cloud,
                    "connection_id": item.location.connection_id,
                    "region": item.location.region,
                    "images": len(item.records),
                    "api_calls": dict(sorted(item.api_calls.items())),
                    "seconds": round(item.seconds, 3),
                }
                for item in self.locations
            ],
        }


class InventoryError(RuntimeError):
    """A location could not be listed. The audit stops rather than report its targets
    MISSING (which would ask for needless re-bakes)."""


def catalog_locations(catalog: Catalog) -> dict[Location, frozenset[str]]:
    """Every (connection, region) the catalog bakes into -> the images it bakes there."""
    images: dict[Location, set[str]] = {}
    for image in catalog.images:
        for cloud in image.targets.clouds():
            target = getattr(image.targets, cloud.value)
            for region in target.regions:
                location = Location(target.connection_id, region, cloud.value)
                images.setdefault(location, set()).add(image.name)
    return {location: frozenset(names) for location, names in sorted(images.items())}


def gather_adapter_location(
    location: Location, images: Iterable[str], catalog: Catalog
) -> LocationInventory:
    """One location of a cloud with an adapter (every cloud but AWS): per image its
    versions, and once what uses them. Source images are not aged here (Azure sources are
    Marketplace or managed images without bakery's dates)."""
    from bakery.catalog import Cloud
    from bakery.clouds.registry import adapter_for

    started = time.perf_counter()
    calls: Counter[str] = Counter()
    records: list[ImageRecord] = []
    in_use: dict[str, str] | None = None
    for name in sorted(images):
        adapter = adapter_for(
            catalog.image(name), Cloud(location.cloud), location.region,
            catalog_dir=catalog.include_dir,
        )  # fmt: skip
        found = adapter.list_managed_images()
        calls["list_managed_images"] += 1
        if found and in_use is None:
            in_use = adapter.images_in_use()
            calls["images_in_use"] += 1
        for item in found:
            # The same record an AWS image gives, from the adapter's tags.
            described = {
                "ImageId": item.image_id,
                "Name": item.name,
                "CreationDate": item.created.isoformat(),
                "Tags": [{"Key": key, "Value": value} for key, value in item.tags.items()],
            }
            record = _record(described, name, location)
            records.append(replace(record, in_use_by=(in_use or {}).get(item.image_id)))
    return LocationInventory(location, records, {}, calls, time.perf_counter() - started)


def parse_time(value: str) -> datetime:
    """An AWS timestamp (`2026-01-04T22:00:00.000Z`) as an aware UTC datetime."""
    parsed = pendulum.parse(value)
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed.in_timezone("UTC")


def _record(image: Mapping[str, Any], name: str, location: Location) -> ImageRecord:
    tags = image.get("Tags")
    return ImageRecord(
        image=name,
        cloud=location.cloud,
        region=location.region,
        image_id=image["ImageId"],
        name=image.get("Name") or image["ImageId"],
        created=parse_time(image["CreationDate"]),
        channel=tag_value(tags, TAG_CHANNEL),
        promoted=bool(tag_value(tags, TAG_PROMOTED_AT)),
        rolled_back=bool(tag_value(tags, TAG_ROLLED_BACK_AT)),
        source_image_id=tag_value(tags, TAG_SOURCE_IMAGE),
        smoke=tag_value(tags, TAG_SMOKE),
        promoted_at=tag_value(tags, TAG_PROMOTED_AT),
        superseded_at=tag_value(tags, TAG_SUPERSEDED_AT),
        dag_run_id=tag_value(tags, TAG_DAG_RUN_ID),
    )


def gather_location(location: Location, images: Iterable[str]) -> LocationInventory:
    """List one location: bakery's images of `images` there, what uses them, their bases."""
    from bakery.hooks.aws import BakeryEc2Hook  # boto3: only where a cloud is called

    started = time.perf_counter()
    wanted = set(images)
    hook = BakeryEc2Hook(aws_conn_id=location.connection_id, region_name=location.region)
    calls = hook.count_api_calls()
    records = []
    for image in hook.iter_managed_images():
        name = tag_value(image.get("Tags"), TAG_IMAGE)
        if name in wanted:
            records.append(_record(image, name, location))
    sources: dict[str, datetime] = {}
    if records:
        in_use = hook.images_in_use()
        records = [replace(r, in_use_by=in_use.get(r.image_id)) for r in records]
        source_ids = {r.source_image_id for r in records if r.source_image_id}
        sources = {
            image_id: parse_time(found["CreationDate"])
            for image_id, found in hook.describe_images_by_id(source_ids).items()
        }
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d images, %d API calls (%s) in %.2f s",
        location.label,
        len(records),
        sum(calls.values()),
        ", ".join(f"{name} {count}" for name, count in sorted(calls.items())),
        seconds,
    )
    return LocationInventory(location, records, sources, calls, seconds)


def gather(
    locations: Mapping[Location, Iterable[str]],
    *,
    max_workers: int = MAX_GATHER_WORKERS,
    catalog: Catalog | None = None,
) -> Inventory:
    """List every location concurrently, one thread each up to `max_workers`."""
    started = time.perf_counter()
    if not locations:
        return Inventory(records=[])
    # Imported once here rather than by every thread at the same moment.
    import bakery.hooks.aws  # noqa: F401

    failures: list[str] = []
    listed: list[LocationInventory] = []
    workers = max(1, min(max_workers, len(locations)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bakery-audit") as pool:
        futures = {
            location: pool.submit(gather_location, location, images)
            if location.cloud == "aws"
            else pool.submit(gather_adapter_location, location, images, _need(catalog))
            for location, images in locations.items()
        }
        for location, future in futures.items():
            try:
                listed.append(future.result())
            except Exception as exc:
                failures.append(f"{location.label}: {type(exc).__name__}: {exc}")
    if failures:
        raise InventoryError("could not list images in " + "; ".join(failures))
    # A copied image's source lives in another region: look its age up wherever it was found.
    sources = {image_id: created for item in listed for image_id, created in item.sources.items()}
    records = [
        replace(record, source_created=sources.get(record.source_image_id or ""))
        for item in listed
        for record in item.records
    ]
    return Inventory(records, listed, time.perf_counter() - started)


def _need(catalog: Catalog | None) -> Catalog:
    if catalog is None:
        raise ValueError("listing a non-AWS location needs the catalog")
    return catalog


def gather_aws(catalog: Catalog, *, max_workers: int = MAX_GATHER_WORKERS) -> Inventory:
    """Every cloud's locations (the name predates the other clouds)."""
    return gather(catalog_locations(catalog), max_workers=max_workers, catalog=catalog)


def broken_targets(catalog: Catalog) -> list[dict[str, Any]]:
    """Catalog targets whose bake failed on their image's `alerts.broken_after_failures`
    consecutive runs, as the bake's digest recorded them (an Airflow Variable; none when
    it cannot be read, e.g. from a laptop)."""
    from bakery.alerts.streaks import broken_units, load_streaks

    thresholds = {image.name: image.alerts.broken_after_failures for image in catalog.images}
    # Images no longer in the catalog are not reported.
    streaks = {
        label: streak
        for label, streak in load_streaks().items()
        if label.split("/")[0] in thresholds
    }
    found = []
    for label, failures in broken_units(streaks, thresholds, default=0).items():
        image, cloud, region = label.split("/")
        found.append(
            {
                "image": image,
                "cloud": cloud,
                "region": region,
                "consecutive_failures": failures,
                "step": streaks[label].step,
            }
        )
    return found


def render_broken(broken: Iterable[Mapping[str, Any]]) -> list[str]:
    return [
        f"[XXX] BROKEN: '{b['image']}' in {b['cloud']}/{b['region']} failed its last"
        f" {b['consecutive_failures']} bake runs (at {b['step']}). Fix the image; re-bakes"
        " alone will not."
        for b in broken
    ]


@dataclass(frozen=True)
class AuditOutcome:
    """One audit: its rows, the inventory behind them, and the JSON report."""

    results: list[FreshnessResult]
    inventory: Inventory
    report: dict[str, Any]
    generated_at: datetime

    @property
    def text(self) -> str:
        return "\n".join([render_text(self.results), *render_broken(self.report["broken"])])


def audit(
    catalog: Catalog,
    *,
    now: datetime | None = None,
    stale_after_days: int | None = None,
    max_workers: int = MAX_GATHER_WORKERS,
    broken: list[dict[str, Any]] | None = None,
) -> AuditOutcome:
    """`broken` defaults to what the bake's failure record says (`broken_targets`)."""
    now = now or pendulum.now("UTC")
    inventory = gather_aws(catalog, max_workers=max_workers)
    results = assess(catalog, inventory.records, now, stale_after_days=stale_after_days)
    report = build_report(
        results,
        generated_at=now,
        thresholds={
            image.name: stale_after_days or image.freshness_days for image in catalog.images
        },
        default_threshold=Image.model_fields["freshness_days"].default,
        override=stale_after_days,
        inventory=inventory.stats(),
        broken=broken_targets(catalog) if broken is None else broken,
    )
    return AuditOutcome(results, inventory, report, now)


def run_audit(catalog: Catalog, now: datetime | None = None) -> list[FreshnessResult]:
    return audit(catalog, now=now).results


def run_and_report(
    *,
    stale_after_days: int | None = None,
    report_path: Path | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The audit DAG's task: audit the catalog, write the JSON report, log the text report
    line by line and an alert line, and return the summary (the task's XCom)."""
    outcome = audit(load_catalog(), now=now, stale_after_days=stale_after_days)
    path = write_report(outcome.report, report_path or default_report_path())
    for line in outcome.text.splitlines():
        log.info("%s", line)
    summary = summarize(outcome.results, generated_at=outcome.generated_at)
    summary["report_path"] = str(path)
    summary["api_calls"] = outcome.inventory.api_calls
    summary["broken"] = outcome.report["broken"]
    alert = stale_alert(summary)
    if alert:
        # Notifier channels are not wired yet; they will send `stale_alert(summary)`.
        log.warning("%s", alert)
    log.info(
        "Freshness report written to %s: %s",
        path,
        ", ".join(f"{status} {count}" for status, count in summary["counts"].items()),
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bakery.audit", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    parser.add_argument("--write", type=Path, metavar="PATH", help="also write the JSON report")
    parser.add_argument(
        "--stale-after-days",
        type=int,
        metavar="N",
        help="stale past N whole days for every image (default: each image's freshness_days)",
    )
    args = parser.parse_args(argv)
    if args.stale_after_days is not None and args.stale_after_days < 1:
        parser.error("--stale-after-days must be at least 1")
    # stdout carries the report alone. Airflow, imported on first use of the hook, logs to
    # stdout: it finds stderr there instead, and logs only warnings unless configured.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    with contextlib.redirect_stdout(sys.stderr):
        outcome = audit(load_catalog(), stale_after_days=args.stale_after_days)
        if args.write:
            write_report(outcome.report, args.write)
    if args.json:
        print(json.dumps(outcome.report, indent=2))
    else:
        print(outcome.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
