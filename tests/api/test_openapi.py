from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from service.tasktypes import TASK_TYPES
from tests.support import client_for

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture
async def document(make_app: Callable[..., FastAPI]) -> dict[str, Any]:
    async with client_for(make_app(long_poll_max_s=25)) as client:
        response = await client.get("/openapi.json")
        assert (await client.get("/docs")).status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


@pytest.mark.parametrize(
    ("operation", "statuses"),
    [
        ("POST /tasks", {"202", "400", "409", "413", "422", "429", "503", "500"}),
        ("GET /tasks", {"200", "400", "413", "429", "503", "500"}),
        ("GET /tasks/{task_id}", {"200", "400", "404", "413", "429", "503", "500"}),
        ("DELETE /tasks/{task_id}", {"200", "400", "404", "409", "413", "429", "503", "500"}),
        ("POST /tasks/{task_id}/retry", {"202", "400", "404", "409", "413", "429", "503", "500"}),
        ("GET /events", {"200", "400", "413", "429", "503", "500"}),
        ("GET /tasks/{task_id}/events", {"200", "204", "400", "404", "413", "429", "503", "500"}),
        ("GET /tasks/{task_id}/history", {"200", "400", "404", "413", "429", "503", "500"}),
        ("GET /stats", {"200", "413", "503", "500"}),
        ("GET /task-types", {"200", "413", "500"}),
        ("GET /healthz", {"200", "413", "503", "500"}),
        ("GET /metrics", {"200", "413", "503", "500"}),
    ],
)
def test_each_route_documents_every_status_it_answers(
    document: dict[str, Any], operation: str, statuses: set[str]
) -> None:
    assert set(operations(document)[operation]["responses"]) == statuses


def test_every_error_is_documented_as_problem_json_and_there_is_no_422(
    document: dict[str, Any],
) -> None:
    for name, operation in operations(document).items():
        for status, response in operation["responses"].items():
            if status >= "400":
                assert response["content"] == PROBLEM, name
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
    }
    field_error = document["components"]["schemas"]["FieldError"]
    assert "in" in field_error["properties"]


def test_the_submission_is_a_union_discriminated_by_task_type(document: dict[str, Any]) -> None:
    body = operations(document)["POST /tasks"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body["discriminator"]["propertyName"] == "task_type"
    assert set(body["discriminator"]["mapping"]) == set(TASK_TYPES)
    assert len(body["oneOf"]) == len(TASK_TYPES)
    schemas = document["components"]["schemas"]
    assert schemas["ComputeSumSubmission"]["additionalProperties"] is False
    assert schemas["ComputeSum"]["properties"]["numbers"]["maxItems"] == 10_000


def test_the_long_poll_limit_is_the_configured_one(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in operations(document)["GET /tasks/{task_id}"]["parameters"]}
    assert parameters["timeout"]["schema"]["maximum"] == 25
    assert parameters["timeout"]["schema"]["exclusiveMinimum"] == 0


def test_tasks_and_lists_have_schemas(document: dict[str, Any]) -> None:
    listing = operations(document)["GET /tasks"]["responses"]["200"]["content"]
    assert set(listing) == {"application/json", "application/x-ndjson"}
    submitted = operations(document)["POST /tasks"]["responses"]["202"]
    assert submitted["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Task"
    }
    assert "Location" in submitted["headers"]


def test_a_new_task_links_to_what_can_be_done_with_it(document: dict[str, Any]) -> None:
    ids = {op["operationId"] for op in operations(document).values()}
    for name in ("POST /tasks", "POST /tasks/{task_id}/retry"):
        links = operations(document)[name]["responses"]["202"]["links"]
        assert {link["operationId"] for link in links.values()} == {
            "get_task",
            "cancel_task",
            "retry_task",
            "task_events",
        }
        assert {link["operationId"] for link in links.values()} <= ids
        assert all(
            link["parameters"] == {"task_id": "$response.body#/task_id"} for link in links.values()
        )
