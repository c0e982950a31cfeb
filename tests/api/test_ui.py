from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from tests.support import client_for


def build(dist: Path) -> None:
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><script src="/assets/app-3f9a.js"></script>')
    (dist / "assets" / "app-3f9a.js").write_text("console.log('taskwire')")


async def test_the_built_ui_is_served_with_the_right_caching(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    build(tmp_path)
    async with client_for(make_app(ui_dir=tmp_path, rate_limit=1)) as client:
        page = await client.get("/")
        asset = await client.get("/assets/app-3f9a.js")
        again = await client.get(
            "/assets/app-3f9a.js", headers={"if-none-match": asset.headers["etag"]}
        )
        missing = await client.get("/assets/nope.js")
        for _ in range(3):  # the UI is not rate limited
            assert (await client.get("/")).status_code == 200
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "ratelimit" not in asset.headers
    assert again.status_code == 304
    assert (
        missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    )


async def test_without_a_build_the_page_says_how_to_make_one(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    async with client_for(make_app(ui_dir=tmp_path / "dist")) as client:
        page = await client.get("/")
        asset = await client.get("/assets/app.js")
    assert page.status_code == 200
    assert "npm run build" in page.text and "/docs" in page.text
    assert asset.status_code == 404


async def test_the_ui_is_not_in_the_api_document(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app()) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/assets") for p in paths)


async def test_other_methods_on_the_ui_are_405_saying_what_is_allowed(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    build(tmp_path)
    async with client_for(make_app(ui_dir=tmp_path)) as client:
        asset = await client.put("/assets/app-3f9a.js")
        page = await client.post("/")
        head = await client.head("/assets/app-3f9a.js")
    assert asset.status_code == 405 and asset.headers["allow"] == "GET, HEAD"
    assert asset.headers["content-type"] == "application/problem+json"
    assert page.status_code == 405 and page.headers["allow"] == "GET, HEAD"
    assert head.status_code == 200
