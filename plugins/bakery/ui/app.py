"""The freshness page as a FastAPI app, mounted by the API server under URL_PREFIX.

Airflow does not authenticate plugin apps (a mounted app inherits none of the core API's
dependencies), so every route here depends on the auth manager itself: the user must be
logged in (the UI's `_token` cookie, or a bearer token) and allowed to see plugin views.
The page reads the audit's JSON report from disk; it never calls a cloud.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from bakery.report import default_report_path
from bakery.ui import URL_PREFIX
from bakery.ui.page import PageLinks, render_page


def _authenticated_viewer() -> Any:
    """The API server's own dependency: 401 without a valid token, 403 without access."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return Depends(requires_access_view(AccessView.PLUGINS))


def read_report(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The report, or None and why not (missing or unreadable: the page says so)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"No freshness report at {path} yet."
    except (OSError, ValueError) as exc:
        return None, f"The freshness report at {path} cannot be read: {exc}."
    if not isinstance(report, dict) or "targets" not in report:
        return None, f"The freshness report at {path} predates this page (no targets)."
    return report, ""


def _links(request: Request) -> PageLinks:
    # root_path is where this app is mounted (e.g. "/bakery", or "/airflow/bakery" behind
    # a path prefix): Airflow's own API and UI live next to it.
    mounted_at = str(request.scope.get("root_path", "")).rstrip("/")
    return PageLinks(airflow_root=mounted_at.removesuffix(URL_PREFIX))


def create_app() -> FastAPI:
    app = FastAPI(
        title="bakery freshness",
        dependencies=[_authenticated_viewer()],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/freshness", response_class=HTMLResponse)
    def freshness_page(request: Request) -> HTMLResponse:
        path = default_report_path()
        report, problem = read_report(path)
        return HTMLResponse(
            render_page(report, report_path=str(path), links=_links(request), problem=problem)
        )

    @app.get("/freshness.json")
    def freshness_report() -> JSONResponse:
        path = default_report_path()
        report, problem = read_report(path)
        if report is None:
            return JSONResponse({"detail": problem}, status_code=404)
        return JSONResponse(report)

    return app
