"""Settings: every tunable of the service, read once from ``TASKWIRE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.access import ApiKeys


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


BACKEND_SCHEMES = ("memory", "redis", "rediss", "unix")
YEAR_S = 365 * 86_400
"""The longest a finished task or an idempotency key may be kept."""


def _backend_url(value: str) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in BACKEND_SCHEMES:
        raise ValueError(f"the URL must start with one of: {', '.join(BACKEND_SCHEMES)}://")
    return value


class Settings(BaseSettings):
    """The validated configuration. Field names carry units; aliases are the environment names."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    backend: Annotated[str, AfterValidator(_backend_url)] = Field(
        "memory://", alias="TASKWIRE_BACKEND"
    )
    """Where state lives: ``memory://`` (this process) or a Redis URL (shared by processes)."""
    redis_prefix: str = Field(
        "taskwire", pattern=r"^[A-Za-z0-9_.:-]{1,64}$", alias="TASKWIRE_REDIS_PREFIX"
    )
    """Every Redis key starts with ``{prefix}:``, so several services can share a server."""
    workers: bool = Field(True, alias="TASKWIRE_WORKERS")
    """Whether this process runs tasks (an API-only process with Redis says false)."""
    lease_s: float = Field(10.0, gt=0, allow_inf_nan=False, alias="TASKWIRE_LEASE")
    """How long a claim on a task holds without renewal (Redis): a lost worker's tasks
    return to the queue within this long."""
    rate_limit: int = Field(10, ge=0, alias="TASKWIRE_RATE_LIMIT")
    """Requests per client address per window; 0 turns rate limiting off."""
    rate_window_s: int = Field(60, ge=1, alias="TASKWIRE_RATE_WINDOW")
    max_queue: int = Field(100, ge=1, alias="TASKWIRE_MAX_QUEUE")
    concurrency: int = Field(5, ge=1, le=1000, alias="TASKWIRE_CONCURRENCY")
    result_ttl_s: float = Field(
        600.0, gt=0, le=YEAR_S, allow_inf_nan=False, alias="TASKWIRE_RESULT_TTL"
    )
    max_tasks: int = Field(10_000, ge=1, alias="TASKWIRE_MAX_TASKS")
    idempotency_ttl_s: float = Field(
        86_400.0, gt=0, le=YEAR_S, allow_inf_nan=False, alias="TASKWIRE_IDEMPOTENCY_TTL"
    )
    """How long an Idempotency-Key is remembered (with the task its first request created)."""
    max_body_bytes: int = Field(1_048_576, ge=1, alias="TASKWIRE_MAX_BODY")
    work_scale: float = Field(1.0, ge=0, allow_inf_nan=False, alias="TASKWIRE_WORK_SCALE")
    task_timeout_s: float = Field(60.0, gt=0, allow_inf_nan=False, alias="TASKWIRE_TASK_TIMEOUT")
    long_poll_max_s: float = Field(10.0, gt=0, allow_inf_nan=False, alias="TASKWIRE_LONG_POLL_MAX")
    event_buffer: int = Field(10_000, ge=1, alias="TASKWIRE_EVENT_BUFFER")
    event_buffer_bytes: int = Field(64 * 2**20, ge=1, alias="TASKWIRE_EVENT_BUFFER_BYTES")
    """The history (memory backend) also keeps at most this many bytes of event data."""
    subscriber_queue: int = Field(1_000, ge=1, alias="TASKWIRE_SUBSCRIBER_QUEUE")
    subscriber_bytes: int = Field(8 * 2**20, ge=1, alias="TASKWIRE_SUBSCRIBER_BYTES")
    """A subscriber is also dropped once this many bytes of events wait for it."""
    heartbeat_s: float = Field(15.0, gt=0, le=15, allow_inf_nan=False, alias="TASKWIRE_HEARTBEAT")
    """Streams send a heartbeat at least this often: every 15 s at most, as clients expect."""
    send_timeout_s: float = Field(10.0, gt=0, allow_inf_nan=False, alias="TASKWIRE_SEND_TIMEOUT")
    """A response whose client takes no bytes for this long is cut off."""
    max_streams_per_client: int = Field(32, ge=1, alias="TASKWIRE_MAX_STREAMS_PER_CLIENT")
    """Streams (SSE, watch) one client address may hold open at once; one more is a 429."""
    max_connections: int = Field(1000, ge=1, alias="TASKWIRE_MAX_CONNECTIONS")
    """Connections a server process takes at once (uvicorn answers 503 above it)."""
    cors_origins: Annotated[list[str], NoDecode, BeforeValidator(_split_commas)] = Field(
        default_factory=list, alias="TASKWIRE_CORS_ORIGINS"
    )
    api_keys_file: Path | None = Field(None, alias="TASKWIRE_API_KEYS_FILE")
    """Turns API keys on: the file of clients (see ``service/access.py``)."""
    metrics_key_required: bool = Field(False, alias="TASKWIRE_METRICS_KEY_REQUIRED")
    """With API keys on, whether ``/metrics`` asks for one too."""
    ui_dir: Path | None = Field(None, alias="TASKWIRE_UI_DIR")
    """The built web UI; by default ``ui/dist`` next to the code."""
    web_concurrency: int = Field(1, ge=1, alias="WEB_CONCURRENCY")
    """Server processes (gunicorn's workers, or uvicorn's): more than 1 only with a shared
    backend."""
    log_level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = (
        Field("info", alias="TASKWIRE_LOG_LEVEL")
    )

    @field_validator("api_keys_file")
    @classmethod
    def _readable_keys(cls, path: Path | None) -> Path | None:
        if path is not None:
            ApiKeys.load(path)  # a malformed line stops the process here, named
        return path

    def api_keys(self) -> ApiKeys | None:
        """The clients of the keys file, or None when API keys are off."""
        return None if self.api_keys_file is None else ApiKeys.load(self.api_keys_file)

    @model_validator(mode="after")
    def _one_process_with_memory(self) -> Settings:
        if self.web_concurrency > 1 and self.backend_scheme == "memory":
            # With memory:// the tasks, the queue, the events and the rate limiter live in
            # one process: a second would be a second, disagreeing service (a task submitted
            # to one unknown to the other, every client with twice its rate limit).
            raise ValueError(
                f"WEB_CONCURRENCY={self.web_concurrency} needs a shared backend: with "
                "TASKWIRE_BACKEND=memory:// state lives in one process, so run one, or set "
                "TASKWIRE_BACKEND=redis://… to run several"
            )
        return self

    @model_validator(mode="after")
    def _someone_runs_tasks(self) -> Settings:
        if not self.workers and self.backend_scheme == "memory":
            raise ValueError(
                "TASKWIRE_WORKERS=false needs a shared backend: with memory:// nothing "
                "else could ever run the tasks this process queues"
            )
        return self

    @property
    def backend_scheme(self) -> str:
        return urlsplit(self.backend).scheme


def load_settings() -> Settings:
    """Read the environment, or stop the process with one line per bad setting."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"invalid setting {'.'.join(map(str, error['loc']))}={error['input']!r}: "
            + error["msg"].removeprefix("Value error, ")
            if error["loc"]
            else f"invalid settings: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        ]
        raise SystemExit("taskwire: " + "\n".join(lines)) from None
