"""``/task-types``: what can be submitted, with each type's parameter schema."""

from __future__ import annotations

import httpx

from api import schemas


async def test_task_types_lists_each_type_with_its_parameter_schema(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/task-types")
    assert response.headers["content-type"] == "application/json"
    types = response.json()
    assert [t["task_type"] for t in types] == [
        "compute_sum", "generate_report", "batch_email", "data_processing",
        "image_processing", "find_longest_consecutive_letters", "unstable_task",
    ]  # fmt: skip
    for entry in types:
        schemas.TaskType.model_validate(entry)
        assert entry["parameters_schema"]["type"] == "object"
    compute_sum = types[0]
    assert compute_sum["parameters_schema"]["properties"]["numbers"]["maxItems"] == 10_000
    assert compute_sum["duration_s"] == {"min": 5.0, "max": 15.0}


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    got, head = await client.get("/task-types"), await client.head("/task-types")
    assert (head.status_code, head.content) == (200, b"")
    assert got.status_code == 200
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == got.headers.get("content-length")
