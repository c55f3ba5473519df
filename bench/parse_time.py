"""How long does parsing dags/ take with a 500-image catalog, next to a trivial DAG?

Run from the repo root:  .venv/bin/python bench/parse_time.py [--images 500] [--runs 5]

Each measurement is a fresh Python process that imports Airflow's DagBag (not timed)
and then times only filling the DagBag from one folder with time.perf_counter. That is
what the DAG processor pays per file on every parse loop: Airflow itself is already
imported (and gc.freeze()d) there, the DAG file and everything it imports are not. The
bake DAG is parsed with BAKERY_CATALOG pointing at a generated catalog; the trivial DAG
is one @task in a folder of its own. Both run `--runs` times, interleaved, after one
untimed warm-up each; the medians and their ratio are printed. Missing the ratio target
prints MISSED; only errors (a failed parse, a missing DAG, a child that crashed) exit
non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_DIR = REPO_ROOT / "dags"
PLUGINS_DIR = REPO_ROOT / "plugins"
TEMPLATE = REPO_ROOT / "include" / "packer" / "aws-linux.pkr.hcl"
CLEANUP_SCRIPT = REPO_ROOT / "include" / "scripts" / "cleanup.sh"
BAKE_DAG_ID = "golden_image_bake"
TRIVIAL_DAG_ID = "trivial_one_task"
TARGET_RATIO = 1.5
RESULT_MARKER = "BENCH-RESULT "

AWS_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "us-gov-west-1",
)
ROLES = ("web", "api", "worker", "cache", "db", "batch", "edge", "ci-runner")

TRIVIAL_DAG = '''\
"""A trivial one-task DAG: the floor any DAG file's parse time is compared with."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="trivial_one_task",
    schedule="0 22 * * 0",
    start_date=pendulum.datetime(2026, 1, 4, tz="UTC"),
    catchup=False,
    tags=["bench"],
)
def trivial_one_task() -> None:
    @task
    def hello() -> str:
        return "hello"

    hello()


trivial_one_task()
'''

# Runs in the child: import Airflow, then time filling the DagBag and nothing else.
# gc.freeze() moves Airflow's own objects out of the collector's way, as the DAG processor
# does: without it, full collections over Airflow's heap land on whichever parse allocates
# most and inflate it.
CHILD = textwrap.dedent(
    """
    import gc, json, sys, time
    from airflow.dag_processing.dagbag import DagBag

    gc.freeze()  # as DagFileProcessorManager does before it forks parsers (manager.py)
    start = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds = time.perf_counter() - start

    image_choices = None
    dag = bag.dags.get(sys.argv[2])
    if dag is not None and "images" in dag.params:
        image_choices = len(dag.params.get_param("images").schema["items"]["enum"])
    print(MARKER + json.dumps({
        "seconds": seconds,
        "dag_ids": sorted(bag.dag_ids),
        "import_errors": bag.import_errors,
        "image_choices": image_choices,
    }))
    """
)


class BenchError(RuntimeError):
    """The benchmark could not measure what it set out to."""


@dataclass(frozen=True)
class Measure:
    label: str
    dags_dir: Path
    dag_id: str
    expected_images: int | None = None


def generate_catalog(path: Path, images: int) -> None:
    """A catalog of `images` valid images on the real AWS template, names and regions varied."""
    entries: list[dict[str, Any]] = []
    for index in range(images):
        role = ROLES[index % len(ROLES)]
        first = index % len(AWS_REGIONS)
        regions = [
            AWS_REGIONS[(first + step * 5) % len(AWS_REGIONS)] for step in range(1 + index % 3)
        ]
        entry: dict[str, Any] = {
            "name": f"{role}-{index:04d}",
            "description": f"Benchmark image {index} ({role}).",
            "owners": [f"{role}-team"],
            "template": str(TEMPLATE),
            "cleanup_script": str(CLEANUP_SCRIPT),
            "variables": {"provision_script": f"scripts/{role}.sh", "build_index": index},
            "targets": {
                "aws": {
                    "regions": regions,
                    "source": (
                        {"ami_id": f"ami-{index:017x}"}
                        if index % 2
                        else {"name": "debian-12-amd64-*", "owners": ["136693071363"]}
                    ),
                }
            },
            "smoke": {
                "checks": [
                    {"name": "homepage", "http": {"port": 80, "path": "/"}},
                    {"name": "agent running", "service": "ssh"},
                ]
            },
        }
        entries.append(entry)
    document = {
        "defaults": {
            "owners": ["platform-team"],
            "targets": {"aws": {"connection_id": "aws_bakery", "subnet_tags": {"bakery": "1"}}},
        },
        "images": entries,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def child_env(work: Path, catalog: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BAKERY_INCLUDE_DIR", None)
    env.pop("BAKERY_CACHE_DIR", None)
    # A DAG processor reuses compiled bytecode from one parse to the next; a shell that
    # disables bytecode caching would make every measured parse recompile every module.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    python_path = [str(PLUGINS_DIR)]
    if env.get("PYTHONPATH"):
        python_path.append(env["PYTHONPATH"])
    env.update(
        {
            "AIRFLOW_HOME": str(work / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "BAKERY_CATALOG": str(catalog),
            "PYTHONPATH": os.pathsep.join(python_path),
        }
    )
    return env


def measure_once(measure: Measure, env: dict[str, str], cwd: Path) -> float:
    child = CHILD.replace("MARKER", repr(RESULT_MARKER))
    proc = subprocess.run(
        [sys.executable, "-c", child, str(measure.dags_dir), measure.dag_id],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        raise BenchError(
            f"{measure.label}: the parse process exited {proc.returncode}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    result = json.loads(lines[-1].removeprefix(RESULT_MARKER))
    if result["import_errors"]:
        raise BenchError(f"{measure.label}: import errors {json.dumps(result['import_errors'])}")
    if measure.dag_id not in result["dag_ids"]:
        raise BenchError(f"{measure.label}: {measure.dag_id} not parsed; got {result['dag_ids']}")
    if measure.expected_images is not None and result["image_choices"] != measure.expected_images:
        raise BenchError(
            f"{measure.label}: the DAG offers {result['image_choices']} images,"
            f" the catalog has {measure.expected_images}"
        )
    return float(result["seconds"])


def run(images: int, runs: int) -> int:
    with tempfile.TemporaryDirectory(prefix="bakery-parse-bench-") as tmp:
        work = Path(tmp)
        catalog = work / "catalog.yaml"
        generate_catalog(catalog, images)
        trivial_dir = work / "trivial_dags"
        trivial_dir.mkdir()
        (trivial_dir / f"{TRIVIAL_DAG_ID}.py").write_text(TRIVIAL_DAG, encoding="utf-8")
        env = child_env(work, catalog)

        bake = Measure(
            f"dags/ folder (bake, audit, rollback, reaper) with a {images}-image catalog",
            DAGS_DIR,
            BAKE_DAG_ID,
            images,
        )
        trivial = Measure("trivial one-task DAG", trivial_dir, TRIVIAL_DAG_ID)
        timings: dict[Measure, list[float]] = {bake: [], trivial: []}
        for measure in timings:  # warm-up: bytecode caches, page cache
            measure_once(measure, env, work)
        for _ in range(runs):
            for measure, seconds in timings.items():
                seconds.append(measure_once(measure, env, work))

    bake_median = statistics.median(timings[bake])
    trivial_median = statistics.median(timings[trivial])
    ratio = bake_median / trivial_median
    print(f"{bake.label}: {bake_median:.3f} s (median of {runs})")
    print(f"{trivial.label}: {trivial_median:.3f} s (median of {runs})")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio: {ratio:.2f}x (target <= {TARGET_RATIO}x) {verdict}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="catalog size (default 500)")
    parser.add_argument("--runs", type=int, default=5, help="timed parses per DAG (default 5)")
    args = parser.parse_args(argv)
    if args.images < 1 or args.runs < 1:
        parser.error("--images and --runs must be at least 1")
    try:
        return run(args.images, args.runs)
    except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
