"""Metrics, in Prometheus's text format at ``/metrics``.

Two kinds of figure, exported two ways:

- **What this process does** (requests it answered, tasks it ran, streams it holds open,
  requests it refused): Prometheus metrics of its own. Under gunicorn with several workers they
  live in files under ``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` sets it up, fresh at
  each start), and a scrape of any worker adds up every worker's: one coherent set of figures
  per process group; across hosts, Prometheus adds the groups' up.
- **What the service holds** (tasks by status, queue depth, tasks processing, events recorded):
  read from the backend when scraped, O(1) in the tasks held, and exported by one process group
  of the whole service only: the one that holds the ``metrics`` role in the backend (with
  memory, the one process). The others leave them out, so adding up every target counts them
  once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.backend import Backend
from service.errors import BackendUnavailable
from service.events import EventBus
from service.model import Task, TaskStatus

logger = logging.getLogger("taskwire.metrics")

REQUEST_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
"""Request durations, from half a millisecond (a GET answered from memory) to seconds."""
RUN_BUCKETS_S = (0.1, 0.5, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300)
"""Task run times: the simulated work takes 5 to 30 s times TASKWIRE_WORK_SCALE."""
QUEUED_BUCKETS_S = (0.005, 0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
"""Time spent waiting in the queue: nothing on an idle service, minutes on a busy one."""
GROUP = "TASKWIRE_METRICS_GROUP"
"""Names this process's group (gunicorn.conf.py gives all its workers the same one)."""
ROLE_TTL_S = 15.0
SYNC_S = 1.0


REQUESTS = "taskwire_http_request_duration_seconds"
REQUESTS_HELP = "HTTP requests by route template, method and status class (streams: until they end)"
LABELS = ["route", "method", "status"]


def status_class(status: int) -> str:
    return f"{status // 100}xx" if status else "none"


MAX_CHILDREN = 1000
"""Labelled request histograms kept at hand; routes are templates, so far fewer occur."""
_Slot = tuple[Any, list[Any], list[float]]
"""A labelled request histogram's sum, buckets and their upper bounds."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods that are labels of their own; any other a client sends is ``other``, so that no
client can make label values (and memory) without end."""


class Metrics:
    """The metrics of one app, and the registry ``/metrics`` renders.

    Args:
        backend: for the service's figures, and the role that decides who exports them.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        self._group = os.environ.get(GROUP) or uuid.uuid4().hex
        self.exporting = False
        self.registry = CollectorRegistry(auto_describe=True)
        own = self.registry
        self.requests: Histogram | None = None
        self._durations: RequestDurations | None = None
        if self._multiprocess:  # another worker's scrape reads them: prometheus-client's files
            self.requests = Histogram(
                REQUESTS, REQUESTS_HELP, LABELS, buckets=REQUEST_BUCKETS_S, registry=own
            )
        else:
            self._durations = RequestDurations()
            own.register(self._durations)
        self.run_time = Histogram(
            "taskwire_task_run_seconds",
            "Run time of the tasks this process ran, by type and outcome",
            ["task_type", "outcome"],
            buckets=RUN_BUCKETS_S,
            registry=own,
        )
        self.queued_time = Histogram(
            "taskwire_task_queued_seconds",
            "Time a task waited in the queue before its first run, by priority",
            ["priority"],
            buckets=QUEUED_BUCKETS_S,
            registry=own,
        )
        self.ended = Counter(
            "taskwire_tasks_finished",
            "Tasks this process ended, by type and status",
            ["task_type", "status"],
            registry=own,
        )
        self.refused = Counter(
            "taskwire_ratelimit_refused", "Requests refused by the rate limiter", registry=own
        )
        self.replays = Counter(
            "taskwire_idempotent_replays",
            "Submits answered again for a reused Idempotency-Key",
            registry=own,
        )
        self.dropped = Counter(
            "taskwire_subscribers_dropped",
            "Subscribers dropped for falling behind",
            registry=own,
        )
        self.open_streams = Gauge(
            "taskwire_open_streams",
            "Streams open now, by kind (sse, watch, longpoll)",
            ["kind"],
            multiprocess_mode="livesum",
            registry=own,
        )
        self._service = ServiceCollector(backend)
        if self._multiprocess:
            self.scraped = CollectorRegistry(auto_describe=True)
            MultiProcessCollector(self.scraped)  # type: ignore[no-untyped-call]
        else:
            self.scraped = own
        self.scraped.register(self._service)
        self._dropped_seen = 0
        self._request_slots: dict[tuple[str, str, int], _Slot] = {}
        # A task's series by (type, status) and by priority: as few as the type names,
        # statuses and priorities are.
        self._task_series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._queued_series: dict[str, Histogram] = {}
        self.observe_request: Callable[[str, str, int, float], None] = (
            self._observe_shared if self._durations is None else self._durations.observe
        )
        """Records a request: ``(route template, method, status, seconds)``; one call."""

    def _observe_shared(self, route: str, method: str, status: int, seconds: float) -> None:
        """``observe_request`` under gunicorn: into prometheus-client's shared files."""
        key = (route, method if method in METHODS else "other", status // 100)
        slot = self._request_slots.get(key)
        if slot is None:
            slot = self._request_slot(key, status)
        total, buckets, bounds = slot
        # What Histogram.observe does, without its walk over the buckets in Python and its
        # exemplar check: a request's duration is recorded in two increments.
        total.inc(seconds)
        buckets[bisect_left(bounds, seconds)].inc(1)

    def _request_slot(self, key: tuple[str, str, int], status: int) -> _Slot:
        # labels() takes a lock and builds a tuple: done once per combination. The child's
        # _sum, _buckets and _upper_bounds are prometheus-client's (pinned below 1.0).
        assert self.requests is not None
        child: Any = self.requests.labels(key[0], key[1], status_class(status))
        slot: _Slot = (child._sum, child._buckets, child._upper_bounds)
        if len(self._request_slots) < MAX_CHILDREN:
            self._request_slots[key] = slot
        return slot

    def observe_task(self, task: Task) -> None:
        """A task this process ended: its run time, and how long it waited first."""
        key = (task.task_type, task.status.value)
        series = self._task_series.get(key)
        if series is None:  # labels() takes a lock and checks its values: once per pair
            series = self._task_series[key] = (self.ended.labels(*key), self.run_time.labels(*key))
        ended, run_time = series
        ended.inc()
        if task.started_at is not None and task.finished_at is not None:
            run_time.observe((task.finished_at - task.started_at).total_seconds())
            if task.attempt == 1:
                queued = self._queued_series.get(task.priority)
                if queued is None:
                    queued = self._queued_series[task.priority] = self.queued_time.labels(
                        task.priority
                    )
                queued.observe((task.started_at - task.created_at).total_seconds())

    async def render(self) -> bytes:
        await self._seek_role()
        await self._service.refresh(exporting=self.exporting)
        return generate_latest(self.scraped)

    async def _seek_role(self) -> None:
        try:
            self.exporting = await self._backend.elect("metrics", self._group, ROLE_TTL_S)
        except BackendUnavailable:
            self.exporting = False

    async def run(self, bus: EventBus) -> None:
        """Keep the figures kept elsewhere in step, and hold (or seek) the export role."""
        while True:
            self.sync(bus)
            await self._seek_role()  # held between scrapes, so that it does not wander
            await asyncio.sleep(SYNC_S)

    def sync(self, bus: EventBus) -> None:
        """Copy what the bus counts into this process's metrics."""
        self.dropped.inc(bus.dropped - self._dropped_seen)
        self._dropped_seen = bus.dropped
        for kind in ("sse", "watch", "longpoll"):
            self.open_streams.labels(kind).set(bus.open_by_kind[kind])


class RequestDurations(Collector):
    """The request-duration histogram of a process that is its own scrape target.

    Each series is a plain list, ``[sum, count of bucket 0, …, count above the last bound]``,
    so that recording a request is two additions in place: no label lookup, no lock (one
    event loop records and scrapes), no method call. Buckets are made cumulative when scraped.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], list[float]] = {}
        self._bounds = list(REQUEST_BUCKETS_S)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method if method in METHODS else "other", status // 100)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= MAX_CHILDREN:
                return  # routes are templates: so many series means something is wrong
            series = self._series[key] = [0.0] * (len(self._bounds) + 2)
        series[0] += seconds
        series[1 + bisect_left(self._bounds, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(REQUESTS, REQUESTS_HELP, labels=LABELS)
        bounds = [*(str(bound) for bound in map(float, self._bounds)), "+Inf"]
        for (route, method, status), series in sorted(self._series.items()):
            cumulative = list(accumulate(series[1:]))
            family.add_metric(
                [route, method, f"{status}xx" if status else "none"],
                list(zip(bounds, cumulative, strict=True)),
                series[0],
            )
        yield family


class ServiceCollector(Collector):
    """The service's figures, from the backend, when this process group exports them."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._counts: Mapping[TaskStatus, int] = {}
        self._events: Mapping[str, int] = {}
        self._exporting = False

    async def refresh(self, *, exporting: bool) -> None:
        self._exporting = exporting
        if exporting:
            self._counts = await self._backend.counts()
            self._events = await self._backend.event_counts()

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "taskwire_metrics_exporter",
            "1 in the one process group that exports the service-wide figures, else 0",
            value=1 if self._exporting else 0,
        )
        if not self._exporting:
            return
        held = GaugeMetricFamily("taskwire_tasks", "Tasks held, by status", labels=["status"])
        for status in TaskStatus:
            held.add_metric([status.value], self._counts.get(status, 0))
        yield held
        yield GaugeMetricFamily(
            "taskwire_queue_depth", "Tasks waiting", value=self._counts.get(TaskStatus.QUEUED, 0)
        )
        yield GaugeMetricFamily(
            "taskwire_processing",
            "Tasks processing, across the service",
            value=self._counts.get(TaskStatus.PROCESSING, 0),
        )
        events = CounterMetricFamily("taskwire_events", "Events recorded, by name", labels=["name"])
        for name, count in sorted(self._events.items()):
            events.add_metric([name], count)
        yield events
