"""The catalog's `alerts` field: channels per image, defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.catalog import CatalogError, load_catalog
from tests.unit.test_catalog import image_entry, write_catalog
from tests.unit.test_catalog import template as template  # the fixture


@pytest.mark.usefixtures("template")
def test_alerts_default_to_the_default_channel_and_three_failures(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, {"images": [image_entry()]}))
    alerts = catalog.image("web").alerts
    assert alerts.channels == ()
    assert alerts.broken_after_failures == 3


@pytest.mark.usefixtures("template")
def test_alerts_from_defaults_and_per_image(tmp_path: Path) -> None:
    document = {
        "defaults": {"alerts": {"broken_after_failures": 2}},
        "images": [
            image_entry("web", alerts={"channels": ["web_slack", "web_mail"]}),
            image_entry("api"),
        ],
    }
    catalog = load_catalog(write_catalog(tmp_path, document))
    assert catalog.image("web").alerts.channels == ("web_slack", "web_mail")
    assert catalog.image("web").alerts.broken_after_failures == 2
    assert catalog.image("api").alerts.channels == ()


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"channels": ["has space"]}, "image 'web', field 'alerts.channels.0': String should"),
        ({"broken_after_failures": 0}, "field 'alerts.broken_after_failures'"),
        ({"chanels": ["x"]}, "field 'alerts.chanels': Extra inputs are not permitted"),
    ],
)
@pytest.mark.usefixtures("template")
def test_bad_alerts_name_the_file_image_and_field(
    tmp_path: Path, alerts: dict, message: str
) -> None:
    path = write_catalog(tmp_path, {"images": [image_entry(alerts=alerts)]})
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)
