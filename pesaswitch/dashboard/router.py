"""Everything the dashboard and the hosted payment page add to the gateway's app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pesaswitch.dashboard import (
    auth_pages,
    c2b_pages,
    hosted,
    links_pages,
    money_pages,
    payments_pages,
    settings_pages,
)
from pesaswitch.dashboard.web import install_page_handlers
from pesaswitch.links import button

STATIC = Path(__file__).parent / "static"


def install_dashboard(app: FastAPI) -> None:
    # The button's script before the hosted page, whose /pay/{slug} would take its path.
    app.include_router(button.router)
    for module in (
        auth_pages,
        payments_pages,
        money_pages,
        settings_pages,
        c2b_pages,
        links_pages,
        hosted,
    ):
        app.include_router(module.router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
    install_page_handlers(app)
