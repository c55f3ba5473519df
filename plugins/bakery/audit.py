"""Gather bakery's images from every cloud and region and report their freshness.

Runs in the audit DAG and from a laptop alike: `python -m bakery.audit [--json]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

from bakery.catalog import Catalog, load_catalog
from bakery.constants import TAG_IMAGE
from bakery.freshness import FreshnessResult, ImageRecord, assess, render_text
from bakery.hooks.aws import BakeryEc2Hook


def _tag(image: dict[str, object], key: str) -> str | None:
    for tag in image.get("Tags", []) or []:  # type: ignore[union-attr]
        if tag["Key"] == key:  # type: ignore[index]
            return str(tag["Value"])  # type: ignore[index]
    return None


def gather_aws(catalog: Catalog) -> Iterator[ImageRecord]:
    """One paginated DescribeImages per connection and region, never one call per image."""
    locations = {
        (image.targets.aws.connection_id, region)
        for image in catalog.images
        if image.targets.aws is not None
        for region in image.targets.aws.regions
    }
    for connection_id, region in sorted(locations):
        hook = BakeryEc2Hook(aws_conn_id=connection_id, region_name=region)
        for image in hook.iter_managed_images():
            name = _tag(image, TAG_IMAGE)
            if name is None:
                continue
            yield ImageRecord(
                image=name,
                cloud="aws",
                region=region,
                image_id=image["ImageId"],
                name=image.get("Name", image["ImageId"]),
                created=datetime.fromisoformat(image["CreationDate"].replace("Z", "+00:00")),
            )


def run_audit(catalog: Catalog, now: datetime | None = None) -> list[FreshnessResult]:
    return assess(catalog, gather_aws(catalog), now or datetime.now(UTC))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bakery.audit", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    args = parser.parse_args(argv)
    logging.getLogger("airflow").setLevel(logging.WARNING)  # the report, not the plumbing
    results = run_audit(load_catalog())
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2, default=str))
    else:
        print(render_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
