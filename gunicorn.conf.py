"""Gunicorn settings for Taskwire: ``gunicorn -c gunicorn.conf.py``.

Environment: ``BIND`` (e.g. ``0.0.0.0:8000``) or ``PORT`` (default 8000, on all interfaces),
and ``FORWARDED_ALLOW_IPS``: the proxies whose ``X-Forwarded-For`` is believed, which is what
the rate limiter sees as the client address (default: only a proxy on this host).
"""

import os

from service.settings import load_settings

# Settings are checked here, in the master, before any worker starts: a worker that exits on a
# bad TASKWIRE_* value is only restarted by the master, again and again, instead of stopping.
load_settings()

wsgi_app = "asgi:app"
worker_class = "uvicorn_worker.UvicornWorker"

# One worker, always: tasks, the queue, the event bus and the rate limiter live in this
# process's memory. A second worker would be a second, disagreeing service: a task submitted
# to one would be unknown to the other, and every client would get twice its rate limit.
workers = 1

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# On SIGTERM Taskwire ends its streams and long-polls within a second and cancels running
# tasks, so a short grace period is plenty; gunicorn kills the worker if it runs out.
graceful_timeout = 10
timeout = 30
keepalive = 5

# Taskwire writes its own access log, one line per request with its request id.
accesslog = None
