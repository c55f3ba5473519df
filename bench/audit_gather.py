"""How does the audit's inventory scale with regions? 10,000 images in 4 regions.

Run from the repo root:  .venv/bin/python bench/audit_gather.py [--images 10000] [--regions 4]

Loads `--images` bakery images, spread evenly over `--regions` regions, into local moto
servers (one per region, the way each AWS region is its own endpoint; each region's
images are an image list moto loads at start, with chosen creation dates and tags). Then,
in this one run, it times with time.perf_counter:

- the one-region gather: `bakery.audit.gather` over the first region alone, and
- the concurrent gather: `bakery.audit.gather` over every region (one thread each),

and prints the API calls each made, the wall time, the peak Python memory of the gather
(tracemalloc, in a repeat of each gather: tracing slows allocation, so it is kept out of
the timed runs) and the process's peak RSS, and the ratio of the all-region wall time to
the one-region wall time. Sequential regions would give a ratio
of about `--regions`; the target is at most 1 + 0.5 per region added (2.5x for 4).
Missing it prints MISSED and still exits 0; only a failed measurement exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "plugins")]

from tests.e2e.moto_support import (  # noqa: E402  (after the path set-up above)
    DEBIAN_OWNER,
    MotoServer,
    ami,
    ami_id,
    moto_server,
)

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1", "sa-east-1")
IMAGES_PER_REGION_PER_NAME = 100  # versions of each catalog image in each region
TARGET_PER_REGION_ADDED = 0.5
NOW = datetime.now(UTC).replace(microsecond=0)


def region_amis(region_index: int, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """`count` bakery images for one region (plus its two base images), and the catalog
    image names they belong to. Each name's newest version is its channel's current one."""
    bases = [ami_id(0xBA5E00 + region_index * 2 + k) for k in (0, 1)]
    amis = [
        ami(bases[0], "debian-12-new", NOW - timedelta(days=12), owner_id=DEBIAN_OWNER),
        ami(bases[1], "debian-12-old", NOW - timedelta(days=90), owner_id=DEBIAN_OWNER),
    ]
    names = [
        f"svc{n:02}-r{region_index}" for n in range(max(1, -(-count // IMAGES_PER_REGION_PER_NAME)))
    ]
    for i in range(count):
        name = names[i % len(names)]
        version = i // len(names)
        tags = {
            "bakery:managed": "true",
            "bakery:image": name,
            "bakery:source-image": bases[version % 2],
        }
        if version == 0:
            tags |= {"bakery:channel": "stable", "bakery:promoted-at": "2026-01-01T00:00:00Z"}
        created = NOW - timedelta(days=version, hours=i % 24)
        amis.append(ami(ami_id(0x1000000 * (region_index + 1) + i), f"{name}-{i}", created, tags))
    return amis, names


def write_catalog(folder: Path, names_by_region: dict[str, list[str]]) -> Path:
    (folder / "bench.pkr.hcl").write_text('source "amazon-ebs" "bench" {}\n')
    images = [
        {
            "name": name,
            "owners": ["bench"],
            "template": "bench.pkr.hcl",
            "targets": {
                "aws": {
                    "regions": [region],
                    "connection_id": connection_id(region),
                    "source": {"ami_id": "ami-0123456789abcdef0"},
                }
            },
        }
        for region, names in names_by_region.items()
        for name in names
    ]
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump({"images": images}, sort_keys=False))
    return path


def connection_id(region: str) -> str:
    return f"aws_bench_{region.replace('-', '_')}"


def warm_up(server: MotoServer, region: str, probe: str) -> None:
    """moto builds a region's images on the first call there: do that before timing."""
    ec2 = server.client("ec2", region)
    ec2.describe_images(ImageIds=[probe])
    # One instance from an old version, so the in-use lookup has something to find.
    ec2.run_instances(ImageId=probe, MinCount=1, MaxCount=1, InstanceType="t3.micro")


def measure(locations: dict[Any, frozenset[str]]) -> dict[str, Any]:
    """Wall time and API calls of one gather, then its peak memory in a second gather:
    tracemalloc slows every allocation, and so would skew the timed run."""
    from bakery.audit import gather

    started = time.perf_counter()
    inventory = gather(locations)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    traced = gather(locations)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(traced.records) == len(inventory.records)
    return {
        "seconds": seconds,
        "images": len(inventory.records),
        "api_calls": inventory.api_calls,
        "peak_mib": peak / 2**20,
        "per_region": {
            item.location.region: (len(item.records), sum(item.api_calls.values()), item.seconds)
            for item in inventory.locations
        },
    }


def report(label: str, result: dict[str, Any]) -> None:
    print(
        f"{label}: {result['images']} images, {result['api_calls']} API calls,"
        f" {result['seconds']:.2f} s wall, peak {result['peak_mib']:.1f} MiB (tracemalloc)"
    )
    for region, (images, calls, seconds) in sorted(result["per_region"].items()):
        print(f"    {region}: {images} images, {calls} API calls, {seconds:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--regions", type=int, default=4, choices=range(2, len(REGIONS) + 1))
    args = parser.parse_args()
    regions = REGIONS[: args.regions]
    per_region = args.images // len(regions)

    with tempfile.TemporaryDirectory(prefix="bakery-bench-audit-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        os.environ["AIRFLOW_HOME"] = str(folder / "airflow-home")
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        print(f"loading {per_region * len(regions)} images into {len(regions)} moto servers...")
        started = time.perf_counter()
        names_by_region: dict[str, list[str]] = {}
        servers: dict[str, MotoServer] = {}
        probes: dict[str, str] = {}
        for index, region in enumerate(regions):
            amis, names_by_region[region] = region_amis(index, per_region)
            probes[region] = amis[-1]["ami_id"]
            servers[region] = stack.enter_context(moto_server(amis, folder / f"moto-{region}"))
            os.environ[f"AIRFLOW_CONN_{connection_id(region).upper()}"] = servers[
                region
            ].connection_uri(region)
        with ThreadPoolExecutor(len(regions)) as pool:
            list(pool.map(lambda r: warm_up(servers[r], r, probes[r]), regions))
        print(f"loaded in {time.perf_counter() - started:.1f} s")

        from bakery.audit import catalog_locations
        from bakery.catalog import load_catalog
        from bakery.hooks import aws  # noqa: F401  (imports boto3 and Airflow untimed)

        locations = catalog_locations(load_catalog(write_catalog(folder, names_by_region)))
        first = {loc: names for loc, names in locations.items() if loc.region == regions[0]}
        one = measure(first)
        every = measure(locations)

    expected = per_region * len(regions)
    if one["images"] != per_region or every["images"] != expected:
        print(f"FAILED: expected {per_region} and {expected} images", file=sys.stderr)
        return 1
    report("one region, sequential", one)
    report(f"{len(regions)} regions, concurrent", every)
    ratio = every["seconds"] / one["seconds"]
    per_added = (ratio - 1) / (len(regions) - 1)
    met = "met" if per_added <= TARGET_PER_REGION_ADDED else "MISSED"
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS of this process (moto servers excluded): {peak_rss_mib:.0f} MiB")
    print(
        f"ratio {len(regions)} regions / 1 region: {ratio:.2f}x"
        f" ({per_added:.2f} per region added; sequential would be ~{len(regions)}x;"
        f" target <= {TARGET_PER_REGION_ADDED} per region added) {met}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
