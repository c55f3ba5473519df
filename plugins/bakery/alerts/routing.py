"""Which channels hear about what: an image's own channels, else the default channel."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bakery.catalog import AlertPolicy, Catalog

log = logging.getLogger(__name__)

# The default channel(s): connection ids, comma-separated, in this Airflow Variable (or,
# as for any Variable, the environment variable AIRFLOW_VAR_BAKERY_ALERT_CHANNELS).
DEFAULT_CHANNELS_VARIABLE = "bakery_alert_channels"
# Used when that Variable is not set.
FALLBACK_CHANNEL = "bakery_alerts"


def split_ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def default_channels() -> list[str]:
    """The default channel(s); `bakery_alerts` when the Variable is not set."""
    try:
        from airflow.sdk import Variable

        value = Variable.get(DEFAULT_CHANNELS_VARIABLE, default=None)
    except Exception as exc:  # no API server to ask (a laptop CLI, a broken deployment)
        log.warning("cannot read Variable %s: %s", DEFAULT_CHANNELS_VARIABLE, exc)
        value = os.environ.get(f"AIRFLOW_VAR_{DEFAULT_CHANNELS_VARIABLE.upper()}")
    return split_ids(value) or [FALLBACK_CHANNEL]


def catalog_or_none() -> Catalog | None:
    """The catalog, or None (logged) when it cannot be read: a broken catalog must not
    swallow the alert about it."""
    from bakery.catalog import load_catalog

    try:
        return load_catalog()
    except Exception as exc:
        log.warning("cannot read the catalog for alert routing: %s", exc)
        return None


def _policy(catalog: Catalog | None, image: str | None) -> AlertPolicy | None:
    if catalog is None or image is None:
        return None
    return next((i.alerts for i in catalog.images if i.name == image), None)


def image_channels(image: str | None, catalog: Catalog | None) -> list[str]:
    """The catalog's `alerts.channels` of `image`, else the default channel(s). An image
    the catalog does not know (or a task that is about no image) goes to the default."""
    policy = _policy(catalog, image)
    return list(policy.channels if policy else ()) or default_channels()


def broken_after(image: str, catalog: Catalog | None) -> int:
    """The image's `alerts.broken_after_failures` (the default for an unknown image)."""
    from bakery.catalog import AlertPolicy

    return (_policy(catalog, image) or AlertPolicy()).broken_after_failures


def broken_thresholds(catalog: Catalog | None) -> dict[str, int]:
    """image -> its `alerts.broken_after_failures`."""
    return {i.name: i.alerts.broken_after_failures for i in catalog.images} if catalog else {}


def union(*groups: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for group in groups for item in group))
