"""LeanRoute: FastAPI's declarations with a shorter request path, and its refusals.

No postponed annotations here: FastAPI reads the endpoints' annotations at definition time.
"""

from typing import Annotated

import httpx
import pytest
from fastapi import Cookie, Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from service.routing import LeanRoute


class Item(BaseModel):
    name: str


async def the_request(request: Request) -> str:
    return request.url.path


def lean_app() -> FastAPI:
    app = FastAPI()
    app.router.route_class = LeanRoute

    @app.post("/items/{item_id}")
    async def post(
        item_id: int,
        item: Item,
        path: Annotated[str, Depends(the_request)],
        limit: Annotated[int, Query(ge=1)] = 10,
        trace: Annotated[str | None, Header(alias="X-Trace")] = None,
    ) -> Response:
        return Response(f"{item_id} {item.name} {path} {limit} {trace}")

    return app


async def call(app: FastAPI, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.post("/items/7", **kwargs)  # type: ignore[arg-type]


async def test_parameters_body_and_dependencies_reach_the_endpoint() -> None:
    response = await call(
        lean_app(), json={"name": "x"}, params={"limit": 3}, headers={"x-trace": "t1"}
    )
    assert response.text == "7 x /items/7 3 t1"


@pytest.mark.parametrize(
    ("kwargs", "location"),
    [
        pytest.param(
            {"json": {"name": "x"}, "params": {"limit": 0}}, ("query", "limit"), id="query"
        ),
        pytest.param({"json": {"nom": "x"}}, ("body", "name"), id="body"),
        pytest.param(
            {"content": b"{", "headers": {"content-type": "application/json"}}, ("body",), id="json"
        ),
        pytest.param({"content": b'{"name": "x"}'}, ("header", "content-type"), id="content-type"),
        pytest.param({"headers": {"content-type": "application/json"}}, ("body",), id="empty"),
    ],
)
async def test_errors_are_fastapis_validation_errors_with_fastapis_locations(
    kwargs: dict[str, object], location: tuple[str, ...]
) -> None:
    response = await call(lean_app(), **kwargs)  # a plain FastAPI app answers them with 422
    assert response.status_code == 422
    assert tuple(response.json()["detail"][0]["loc"][: len(location)]) == location


def test_shapes_it_cannot_serve_are_refused_when_the_route_is_built() -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute

    def sync_dependency(request: Request) -> None:
        return None

    async def needs_a_query(q: int) -> int:
        return q

    with pytest.raises(TypeError, match="cookies"):

        @app.get("/a")
        async def a(session: Annotated[str, Cookie()]) -> Response:
            return Response()

    with pytest.raises(TypeError, match="async"):

        @app.get("/b")
        async def b(x: Annotated[None, Depends(sync_dependency)]) -> Response:
            return Response()

    with pytest.raises(TypeError, match="only the request"):

        @app.get("/c")
        async def c(x: Annotated[int, Depends(needs_a_query)]) -> Response:
            return Response()


async def test_an_endpoint_must_answer_with_a_response() -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute

    @app.get("/d")
    async def d() -> dict[str, str]:
        return {"not": "a response"}

    with pytest.raises(TypeError, match="must return a Response"):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            await c.get("/d")
