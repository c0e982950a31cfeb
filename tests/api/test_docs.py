"""``/docs``: Swagger UI from this service's own files (fastapi-offline's bundle), no CDN."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from api.docs import ASSETS
from tests.support import client_for


@pytest.fixture
async def client(make_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app()) as client:
        yield client


async def test_the_page_loads_swagger_ui_and_the_openapi_document_from_this_service(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in page
    assert 'href="/docs/assets/swagger-ui.css"' in page
    assert 'href="/docs/assets/favicon.png"' in page
    assert "url: '/openapi.json'" in page
    assert "<title>Taskwire - Swagger UI</title>" in page


async def test_the_page_names_no_other_site(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert not re.search(r"https?:|//[a-z]", page, re.IGNORECASE)


@pytest.mark.parametrize(
    ("asset", "content_type"),
    [
        ("swagger-ui-bundle.js", r"(text|application)/javascript(; charset=utf-8)?"),
        ("swagger-ui.css", r"text/css(; charset=utf-8)?"),
        ("favicon.png", r"image/png"),
    ],
)
async def test_every_asset_the_page_names_is_served_with_its_type(
    client: httpx.AsyncClient, asset: str, content_type: str
) -> None:
    page = (await client.get("/docs")).text
    assert f"/docs/assets/{asset}" in page
    response = await client.get(f"/docs/assets/{asset}")
    assert response.status_code == 200
    assert re.fullmatch(content_type, response.headers["content-type"])
    assert response.content == (ASSETS / asset).read_bytes()


async def test_the_bundle_is_swagger_ui(client: httpx.AsyncClient) -> None:
    bundle = (await client.get("/docs/assets/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in bundle


async def test_nothing_but_the_files_is_served_under_the_assets(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/docs/assets/nope.js")).status_code == 404
    assert (await client.get("/docs/assets/")).status_code == 404
    assert (await client.get("/docs/assets/%2e%2e/__init__.py")).status_code == 404
    assert (await client.post("/docs")).status_code == 405


async def test_the_docs_and_their_assets_are_not_rate_limited(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app(rate_limit=1)) as client:
        for _ in range(3):
            assert (await client.get("/docs")).status_code == 200
            for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
                response = await client.get(f"/docs/assets/{asset}")
                assert response.status_code == 200
                assert "ratelimit" not in response.headers
            assert (await client.get("/openapi.json")).status_code == 200
        counted = await client.get("/tasks")
        assert counted.status_code == 200  # the one request of the window is still there
        assert (await client.get("/tasks")).status_code == 429
