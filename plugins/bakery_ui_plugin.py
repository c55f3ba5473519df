"""Registers bakery in the Airflow UI: the freshness page (a FastAPI app plus a Browse
menu entry that shows it inside the UI) and the operator extra links."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from bakery.links import ImageConsoleLink, SmokeLogLink
from bakery.ui import URL_PREFIX
from bakery.ui.lazy import AsgiApp, LazyAsgiApp


def _freshness_app() -> AsgiApp:
    # Imported on the first request: every task process loads this plugin too.
    from bakery.ui.app import create_app

    return create_app()


class BakeryUiPlugin(AirflowPlugin):
    name = "bakery"
    fastapi_apps = [
        {"app": LazyAsgiApp(_freshness_app), "url_prefix": URL_PREFIX, "name": "Bakery freshness"}
    ]
    external_views = [
        {
            "name": "Image freshness",
            "href": f"{URL_PREFIX}/freshness",
            "url_route": "bakery-freshness",
            "category": "browse",
            "destination": "nav",
        }
    ]
    operator_extra_links = [ImageConsoleLink(), SmokeLogLink()]
