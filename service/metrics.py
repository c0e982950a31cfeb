"""Metrics: Prometheus gauges and counters, read from the engine when scraped.

Nothing is counted on the request path: a scrape asks the store, queue, pool, bus and
limiter for their current numbers, and the engine's outcome counter for the totals.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from middleware.ratelimit import SlidingWindowLimiter
from service.engine import Engine
from service.model import TaskStatus


class TaskwireCollector(Collector):
    def __init__(self, engine: Engine, limiter: SlidingWindowLimiter | None) -> None:
        self._engine = engine
        self._limiter = limiter

    def collect(self) -> Iterator[Metric]:
        engine = self._engine
        held = GaugeMetricFamily("taskwire_tasks", "Tasks held in memory", labels=["status"])
        counts = engine.store.count_by_status()
        for status in TaskStatus:
            held.add_metric([status.value], counts[status])
        yield held
        yield GaugeMetricFamily("taskwire_queue_depth", "Tasks waiting", value=len(engine.queue))
        yield GaugeMetricFamily("taskwire_running", "Tasks processing", value=engine.pool.running)
        finished = CounterMetricFamily(
            "taskwire_tasks_finished", "Tasks that ended", labels=["task_type", "status"]
        )
        for (task_type, outcome), count in sorted(engine.outcomes.items()):
            finished.add_metric([task_type, outcome], count)
        yield finished
        bus = engine.bus
        yield GaugeMetricFamily(
            "taskwire_subscribers", "Open event subscriptions", value=bus.subscriber_count
        )
        yield CounterMetricFamily(
            "taskwire_events_published", "Events published on the bus", value=bus.published
        )
        yield CounterMetricFamily(
            "taskwire_subscribers_dropped", "Subscribers dropped for falling behind", bus.dropped
        )
        if self._limiter is not None:
            yield GaugeMetricFamily(
                "taskwire_ratelimit_clients", "Client addresses tracked", value=len(self._limiter)
            )


def build_registry(engine: Engine, limiter: SlidingWindowLimiter | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(TaskwireCollector(engine, limiter))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
