"""The ASGI entry point: ``uvicorn asgi:app`` or ``gunicorn -c gunicorn.conf.py``."""

import sys

from api.app import create_app
from api.server import tune_gc

STARTUP_FAILURE = 3
"""The exit status of a worker process that cannot start as configured: uvicorn's supervisor
(``--workers``) and gunicorn's arbiter both stop on it, rather than start the worker again and
again, each time to the same refusal."""

try:
    app = create_app()
except SystemExit as refusal:  # a bad setting, said in words (service/settings.py)
    if isinstance(refusal.code, str):
        print(refusal.code, file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from None
    raise
tune_gc()
