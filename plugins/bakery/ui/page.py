"""Pure: the freshness page's HTML from the audit's JSON report (no cloud, no database)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bakery.constants import AUDIT_DAG_ID, BAKE_DAG_ID

TEMPLATES = Path(__file__).parent / "templates"

# Text and colour per status: the text carries the meaning, the colour only repeats it.
STATUS_STYLES = {
    "FRESH": "fresh",
    "STALE": "stale",
    "BASE_STALE": "stale",
    "SUPERSEDED_IN_USE": "stale",
    "MISSING": "missing",
    "FAILED": "failed",
}


@dataclass(frozen=True)
class PageLinks:
    """Where the page points: Airflow's REST API and UI, from the app's mount point."""

    airflow_root: str  # "" when Airflow is served at the site's root

    @property
    def api(self) -> str:
        return f"{self.airflow_root}/api/v2"

    def dag(self, dag_id: str) -> str:
        return f"{self.airflow_root}/dags/{dag_id}"


@cache
def _template() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
    )
    return environment.get_template("freshness.html")


def group_by_image(targets: list[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for target in targets:
        grouped.setdefault(str(target["image"]), []).append(target)
    return grouped


def render_page(
    report: Mapping[str, Any] | None, *, report_path: str, links: PageLinks, problem: str = ""
) -> str:
    """The page; `report` None (with `problem` saying why) when there is none to show."""
    targets = list((report or {}).get("targets") or [])
    return str(
        _template().render(
            report=report,
            problem=problem,
            report_path=report_path,
            images=group_by_image(targets),
            styles=STATUS_STYLES,
            links=links,
            bake_dag_id=BAKE_DAG_ID,
            audit_dag_id=AUDIT_DAG_ID,
        )
    )
