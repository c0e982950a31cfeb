"""``/docs``: Swagger UI, served from this service's own files, not from a CDN.

So the documentation works offline and behind a firewall, and the page loads no third-party
script. The files are the Swagger UI bundle that the ``fastapi-offline`` distribution ships.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/docs/assets"


def docs_routes(openapi_url: str, title: str) -> list[BaseRoute]:
    async def docs(_: Request) -> Response:
        page: HTMLResponse = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
        )
        return page

    return [
        Route("/docs", docs, methods=["GET"], include_in_schema=False),
        Mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets"),
    ]
