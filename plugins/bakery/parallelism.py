"""How many bakes run at once across the deployment: BAKERY_MAX_PARALLEL_BAKES, read when
the bake DAG is parsed (so set it where the dag-processor runs)."""

from __future__ import annotations

import os

PARALLEL_BAKES_ENV = "BAKERY_MAX_PARALLEL_BAKES"
# Each bake holds a worker slot and a builder instance for its whole Packer run; most of
# that is waiting on the cloud, so a few per worker core is fine.
DEFAULT_PARALLEL_BAKES = 8


def max_parallel_bakes() -> int:
    """The limit on packer_build tasks running at once (default 8)."""
    raw = os.environ.get(PARALLEL_BAKES_ENV, "").strip()
    if not raw:
        return DEFAULT_PARALLEL_BAKES
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f"{PARALLEL_BAKES_ENV} must be a whole number of at least 1 (got {raw!r})")
    return limit
