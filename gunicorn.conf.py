"""Gunicorn settings for Taskwire: ``gunicorn -c gunicorn.conf.py``.

Environment: ``BIND`` (e.g. ``0.0.0.0:8000``) or ``PORT`` (default 8000, on all interfaces);
``WEB_CONCURRENCY``, the number of worker processes (default 1; more only with a shared
backend, ``TASKWIRE_BACKEND=redis://…``); and ``FORWARDED_ALLOW_IPS``: the proxies whose
``X-Forwarded-For`` is believed, which is what the rate limiter sees as the client address
(none by default).
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from service.settings import load_settings

# Settings are checked here, in the master, before any worker starts: a worker that exits on a
# bad TASKWIRE_* value is only restarted by the master, again and again, instead of stopping.
settings = load_settings()

# Metrics of every worker in one scrape (api/prometheus.py): they write to files in a
# directory of this process group, fresh at each start, which each scrape adds up. Set before
# any worker imports prometheus_client, which reads it then.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir:  # the operator's own: emptied, as the figures of a past run would mislead
    for stale in Path(_metrics_dir).glob("*.db"):
        stale.unlink()
else:
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="taskwire-metrics-"
    )
os.environ.setdefault("TASKWIRE_METRICS_GROUP", uuid.uuid4().hex)

wsgi_app = "asgi:app"
# Uvicorn with a deadline for request heads, no WebSocket, and TASKWIRE_MAX_CONNECTIONS.
worker_class = "api.server.TaskwireWorker"

# WEB_CONCURRENCY, checked with the settings: at least 1, and 1 with the memory backend.
workers = settings.web_concurrency

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# No proxy is trusted unless named: with gunicorn's default (127.0.0.1), any process on this
# host could send X-Forwarded-For and be counted as any address it likes.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")

# On SIGTERM Taskwire ends its streams and long-polls within a second and releases running
# tasks, so a short grace period is plenty; gunicorn kills the worker if it runs out.
graceful_timeout = 10
timeout = 30
keepalive = 5

# Taskwire writes its own access log, one line per request with its request id.
accesslog = None

# No control socket (gunicorn 27's gunicornc): it would live in $HOME, which a container's
# user may not have (or may not write), and be shared by two groups of one user on a host.
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    """A worker's gauges stop counting once it is gone (its counters still add up)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _metrics_dir and Path(_metrics_dir).name.startswith("taskwire-metrics-"):
        shutil.rmtree(_metrics_dir, ignore_errors=True)
