from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_spec_limits() -> None:
    settings = load_settings()
    assert (settings.rate_limit, settings.rate_window_s) == (10, 60)
    assert (settings.max_queue, settings.concurrency, settings.max_tasks) == (100, 5, 10_000)
    assert (settings.result_ttl_s, settings.max_body_bytes) == (600, 1_048_576)
    assert (settings.work_scale, settings.task_timeout_s, settings.long_poll_max_s) == (1.0, 60, 10)
    assert (settings.event_buffer, settings.heartbeat_s, settings.cors_origins) == (10_000, 15, [])
    assert (settings.subscriber_queue, settings.send_timeout_s) == (1_000, 10)
    assert settings.backend == "memory://"


def test_the_backend_is_named_by_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKWIRE_BACKEND", "memory://")
    assert load_settings().backend == "memory://"


def test_values_come_from_taskwire_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKWIRE_RATE_LIMIT", "25")
    monkeypatch.setenv("TASKWIRE_WORK_SCALE", "0")
    monkeypatch.setenv("TASKWIRE_CORS_ORIGINS", "http://a.example, http://b.example")
    settings = load_settings()
    assert (settings.rate_limit, settings.work_scale) == (25, 0)
    assert settings.cors_origins == ["http://a.example", "http://b.example"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TASKWIRE_RATE_LIMIT", "ten"),
        ("TASKWIRE_RATE_LIMIT", "-1"),
        ("TASKWIRE_RATE_WINDOW", "0"),
        ("TASKWIRE_MAX_QUEUE", "0"),
        ("TASKWIRE_CONCURRENCY", "0"),
        ("TASKWIRE_RESULT_TTL", "0"),
        ("TASKWIRE_MAX_TASKS", "1.5"),
        ("TASKWIRE_MAX_BODY", "0"),
        ("TASKWIRE_WORK_SCALE", "-1"),
        ("TASKWIRE_WORK_SCALE", "inf"),
        ("TASKWIRE_TASK_TIMEOUT", "nan"),
        ("TASKWIRE_LONG_POLL_MAX", "0"),
        ("TASKWIRE_EVENT_BUFFER", "0"),
        ("TASKWIRE_HEARTBEAT", "0"),
        ("TASKWIRE_HEARTBEAT", "15.5"),  # clients expect one at least every 15 s
        ("TASKWIRE_RESULT_TTL", "31536001"),  # over a year: and a far past overflows
        ("TASKWIRE_IDEMPOTENCY_TTL", "1e12"),
        ("WEB_CONCURRENCY", "0"),
        ("WEB_CONCURRENCY", "two"),
        ("TASKWIRE_LOG_LEVEL", "loud"),
        ("TASKWIRE_BACKEND", "ftp://example"),
        ("TASKWIRE_BACKEND", "memory"),
        ("TASKWIRE_SUBSCRIBER_QUEUE", "0"),
        ("TASKWIRE_SEND_TIMEOUT", "0"),
    ],
)
def test_a_bad_value_stops_with_a_message_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings()
    assert f"invalid setting {name}={value!r}" in str(stopped.value.code)


@pytest.mark.parametrize("value", ["warning", "WARNING", "Warning"])
def test_the_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TASKWIRE_LOG_LEVEL", value)
    assert load_settings().log_level == "warning"


def test_settings_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        Settings().rate_limit = 5  # type: ignore[misc]
