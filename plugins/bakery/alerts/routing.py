"""Which channels hear about what: an image's own channels, else the default channel."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

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


def image_channels(image: str | None) -> list[str]:
    """The catalog's `alerts.channels` of `image`, else the default channel(s). An image
    the catalog does not know (or a task that is about no image) goes to the default."""
    if image is None:
        return default_channels()
    try:
        from bakery.catalog import load_catalog

        own = list(load_catalog().image(image).alerts.channels)
    except Exception as exc:  # a broken catalog must not swallow the alert about it
        log.warning("cannot read the alert channels of %s from the catalog: %s", image, exc)
        own = []
    return own or default_channels()


def broken_thresholds() -> tuple[dict[str, int], int]:
    """image -> its `alerts.broken_after_failures`, and the default for unknown images."""
    from bakery.catalog import AlertPolicy, load_catalog

    default = AlertPolicy().broken_after_failures
    try:
        catalog = load_catalog()
    except Exception as exc:
        log.warning("cannot read broken_after_failures from the catalog: %s", exc)
        return {}, default
    return {i.name: i.alerts.broken_after_failures for i in catalog.images}, default


def union(*groups: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for group in groups for item in group))
