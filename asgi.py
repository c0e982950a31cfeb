"""The ASGI entry point: ``uvicorn asgi:app`` or ``gunicorn -c gunicorn.conf.py``."""

from api.app import create_app

app = create_app()
