"""The import graph points one way: api -> streams -> service; middleware stands alone.

Read from the source (every ``import``, lazy ones inside functions too), so a forbidden
import fails here before anyone runs the code path that makes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = {"fastapi", "starlette", "sse_starlette", "uvicorn", "uvicorn_worker", "gunicorn"}

FORBIDDEN = {
    # The domain core: no web framework, nothing of the layers above it.
    "service": WEB | {"prometheus_client", "api", "middleware", "streams"},
    # Pure ASGI middleware, reusable in any Starlette app: nothing of the app, no FastAPI.
    "middleware": {"fastapi", "api", "service", "streams"},
    # Stream renderers over the core's events: nothing of the HTTP edge.
    "streams": {"fastapi", "api", "middleware"},
}


def imports(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize(
    ("package", "path"),
    [
        pytest.param(package, path, id=str(path.relative_to(ROOT)))
        for package in FORBIDDEN
        for path in modules(package)
    ],
)
def test_a_layer_imports_nothing_above_it(package: str, path: Path) -> None:
    assert not imports(path) & FORBIDDEN[package]


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from fastapi import FastAPI\n    import api.app\n")
    assert imports(source) == {"fastapi", "api"}


def test_every_layer_has_modules_to_check() -> None:
    assert all(modules(package) for package in FORBIDDEN)
