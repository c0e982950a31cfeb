"""Baseline: a bare FastAPI app, written as FastAPI's documentation shows.

One pydantic-validated POST route and one GET route over a dict; no middleware, no limits,
no background work. Taskwire does all of this and more per request.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

app = FastAPI()


class Parameters(BaseModel):
    numbers: list[float] = Field(min_length=1, max_length=10_000)


class Submission(BaseModel):
    task_type: Literal["compute_sum"]
    parameters: Parameters
    priority: Literal["low", "normal", "high"] = "normal"


class Task(Submission):
    task_id: str
    status: str = "queued"


TASKS: dict[str, Task] = {}


@app.post("/tasks", status_code=202)
async def submit(submission: Submission) -> Task:
    task = Task(task_id=str(uuid.uuid4()), **submission.model_dump())
    TASKS[task.task_id] = task
    return task


@app.get("/tasks/{task_id}")
async def read(task_id: str) -> Task:
    if task_id not in TASKS:
        raise HTTPException(404)
    return TASKS[task_id]


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}
