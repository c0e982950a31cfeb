"""Baseline: the leanest FastAPI app that still validates a body.

One ``BaseModel`` with ``task_type: str, parameters: dict``; the POST returns a plain dict, the
GET the stored dict: no response models, no nested parameter model, no middleware. A stricter
yardstick than ``bare_fastapi.py``, whose response models cost a good part of a request.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()


class Submission(BaseModel):
    task_type: str
    parameters: dict[str, Any]


TASKS: dict[str, dict[str, Any]] = {}


@app.post("/tasks", status_code=202)
async def submit(submission: Submission) -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    task = {
        "task_id": task_id,
        "status": "queued",
        "task_type": submission.task_type,
        "parameters": submission.parameters,
    }
    TASKS[task_id] = task
    return task


@app.get("/tasks/{task_id}")
async def read(task_id: str) -> dict[str, Any]:
    if task_id not in TASKS:
        raise HTTPException(404)
    return TASKS[task_id]


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}
