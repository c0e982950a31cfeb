"""LeanRoute: FastAPI's declarations with a shorter request path, and its refusals.

No postponed annotations here: FastAPI reads the endpoints' annotations at definition time.
"""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import BackgroundTasks, Cookie, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from api.leanroute import LeanRoute


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


async def test_an_endpoint_annotated_for_a_response_must_answer_with_one() -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute

    @app.get("/d")
    async def d() -> Response:
        return {"not": "a response"}  # type: ignore[return-value]

    with pytest.raises(TypeError, match="must return a Response"):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            await c.get("/d")


async def background(tasks: BackgroundTasks) -> Response:
    return Response()


async def response_parameter(response: Response) -> Response:
    return Response()


def not_async() -> Response:
    return Response()


async def returns_a_dict() -> dict[str, str]:
    return {}


async def not_annotated():  # type: ignore[no-untyped-def]
    return Response()


async def yielding_dependency(request: Request) -> AsyncIterator[None]:
    yield


async def with_a_yield_dependency(x: Annotated[None, Depends(yielding_dependency)]) -> Response:
    return Response()


@pytest.mark.parametrize(
    ("endpoint", "refusal"),
    [
        pytest.param(background, "does not support BackgroundTasks", id="background-tasks"),
        pytest.param(response_parameter, "does not support a Response parameter", id="response"),
        pytest.param(not_async, "must be an async function", id="not-async"),
        pytest.param(returns_a_dict, "annotated to return a Response", id="returns-a-dict"),
        pytest.param(not_annotated, "annotated to return a Response", id="not-annotated"),
        pytest.param(with_a_yield_dependency, "must be async functions", id="yield-dependency"),
    ],
)
def test_what_a_lean_route_cannot_serve_is_refused_when_it_is_declared(
    endpoint: Callable[..., Any], refusal: str
) -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute
    with pytest.raises(TypeError, match=refusal):
        app.get("/e")(endpoint)
    assert not [r for r in app.router.routes if getattr(r, "path", None) == "/e"]


def test_a_response_subclass_is_a_response() -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute

    @app.get("/f")
    async def f() -> JSONResponse:
        return JSONResponse({})

    assert [r for r in app.router.routes if getattr(r, "path", None) == "/f"]


async def test_a_get_route_answers_head_with_its_status_and_headers_and_no_body() -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute
    started: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        started.append("body")
        yield b"never sent to a HEAD"

    @app.get("/g")
    async def g() -> Response:
        return StreamingResponse(body(), status_code=203, headers={"X-Mark": "g"})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        head = await c.head("/g")
        assert started == []  # the streaming body was never started
        get = await c.get("/g")
    assert (head.status_code, head.headers["x-mark"], head.content) == (203, "g", b"")
    assert (get.status_code, get.headers["x-mark"], get.content) == (
        203,
        "g",
        b"never sent to a HEAD",
    )
    assert "/g" in app.openapi()["paths"] and set(app.openapi()["paths"]["/g"]) == {"get"}
