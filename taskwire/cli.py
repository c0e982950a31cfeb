"""The ``taskwire`` command: run the service, run a worker, and (see below) use the API."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="taskwire",
    help="Taskwire: a rate-limited asynchronous task service, and a client for it.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    reload: bool = typer.Option(False, help="Restart when the code changes (development)."),
) -> None:
    """Run the service (uvicorn, one process); settings come from TASKWIRE_* variables."""
    import os

    import uvicorn

    from api.server import uvicorn_options
    from service.settings import load_settings

    settings = load_settings()  # a bad setting stops here, with its name, before uvicorn starts
    uvicorn.run(
        "asgi:app",
        host=host,
        port=port,
        reload=reload,
        access_log=False,
        # No proxy trusted unless named (uvicorn's default would trust 127.0.0.1).
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", ""),
        **uvicorn_options(settings.max_connections),
    )


@app.command()
def worker() -> None:
    """Run tasks without an HTTP server (needs TASKWIRE_BACKEND=redis://…)."""
    from service.worker import main

    main()


def main() -> None:
    app()
