"""Where the time goes: py-spy samples Taskwire while wrk drives POST and GET /tasks."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import PYTHON, pin_to_client_cpus, serve
from bench.http import HIGH_LIMIT, a_task_id, drained

HERE = Path(__file__).parent
GROUPS = (
    (
        "Taskwire",
        re.compile(
            r"/work/[^/]+/(service|middleware|streams|api)/|\((service|middleware|streams|api)/"
        ),
    ),
    ("uvicorn and the socket", re.compile(r"uvicorn/|httptools|uvloop")),
    ("Starlette and FastAPI", re.compile(r"starlette/|fastapi/")),
    ("pydantic and orjson", re.compile(r"pydantic|orjson")),
)


def record(pid: int, seconds: float, load: list[str]) -> Counter[str]:
    """Self time per function (file:function) while ``load`` runs."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        spy = subprocess.Popen(
            [str(Path(PYTHON).parent / "py-spy"), "record", "-p", str(pid), "-d", str(seconds),
             "-r", "400", "-f", "raw", "-o", out.name, "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        subprocess.run(load, capture_output=True, check=True)
        spy.wait()
        samples: Counter[str] = Counter()
        for line in Path(out.name).read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            leaf = stack.rsplit(";", 1)[-1]
            samples[re.sub(r":\d+\)$", ")", leaf)] += int(count)
    return samples


def summarise(
    samples: Counter[str], groups: tuple[tuple[str, re.Pattern[str]], ...] = GROUPS
) -> dict[str, Any]:
    busy = {frame: n for frame, n in samples.items() if "Runner.run" not in frame}  # idle loop
    total = sum(busy.values()) or 1
    shares: Counter[str] = Counter()
    for frame, n in busy.items():
        group = next(
            (name for name, pattern in groups if pattern.search(frame)), "asyncio and the rest"
        )
        shares[group] += n
    top = Counter(busy).most_common(8)
    return {
        "groups": {name: round(100 * n / total, 1) for name, n in shares.most_common()},
        "top": [
            (re.sub(r" \(.*/(site-packages/)?", " (", frame), round(100 * n / total, 1))
            for frame, n in top
        ],
    }


def measure(seconds: float = 5) -> dict[str, Any]:
    with serve(**HIGH_LIMIT) as server:
        wrk = ["wrk", "-t1", "-c64", f"-d{seconds:g}s"]
        post = record(
            server.pid, seconds, [*wrk, "-s", str(HERE / "post.lua"), server.url + "/tasks"]
        )
        drained(server)
        get = record(server.pid, seconds, [*wrk, server.url + f"/tasks/{a_task_id(server)}"])
    return {"post": summarise(post), "get": summarise(get)}


if __name__ == "__main__":
    pin_to_client_cpus()
    import json

    print(json.dumps(measure(), indent=2))
