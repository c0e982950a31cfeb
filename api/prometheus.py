"""Metrics: Prometheus gauges and counters, read from the backend, bus and engine when scraped.

Nothing is counted on the request path: a scrape asks for the current counts (O(1) in the
number of tasks held), and the engine's outcome counter for the totals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.backend import Backend
from service.engine import Engine
from service.model import TaskStatus


class TaskwireCollector(Collector):
    def __init__(self, backend: Backend, engine: Engine) -> None:
        self._backend = backend
        self._engine = engine
        self._counts: Mapping[TaskStatus, int] = {}

    async def refresh(self) -> None:
        """Read what lives in the backend (an await, which ``collect`` cannot make)."""
        self._counts = await self._backend.counts()

    def collect(self) -> Iterator[Metric]:
        counts = self._counts
        held = GaugeMetricFamily("taskwire_tasks", "Tasks held", labels=["status"])
        for status in TaskStatus:
            held.add_metric([status.value], counts.get(status, 0))
        yield held
        yield GaugeMetricFamily(
            "taskwire_queue_depth", "Tasks waiting", value=counts.get(TaskStatus.QUEUED, 0)
        )
        yield GaugeMetricFamily(
            "taskwire_running", "Tasks processing in this process", value=self._engine.pool.running
        )
        finished = CounterMetricFamily(
            "taskwire_tasks_finished", "Tasks that ended", labels=["task_type", "status"]
        )
        for (task_type, outcome), count in sorted(self._engine.outcomes.items()):
            finished.add_metric([task_type, outcome], count)
        yield finished
        bus = self._backend.bus
        yield GaugeMetricFamily(
            "taskwire_subscribers", "Open event subscriptions", value=bus.subscriber_count
        )
        yield CounterMetricFamily(
            "taskwire_events_published", "Events delivered to this process", bus.delivered
        )
        yield CounterMetricFamily(
            "taskwire_subscribers_dropped", "Subscribers dropped for falling behind", bus.dropped
        )


class Metrics:
    """The registry ``/metrics`` renders."""

    def __init__(self, backend: Backend, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._collector = TaskwireCollector(backend, engine)
        self.registry.register(self._collector)

    async def render(self) -> bytes:
        await self._collector.refresh()
        return generate_latest(self.registry)
