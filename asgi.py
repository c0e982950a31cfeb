"""The ASGI entry point: ``uvicorn asgi:app`` or ``gunicorn -c gunicorn.conf.py``."""

from api.app import create_app
from api.server import tune_gc

app = create_app()
tune_gc()
