"""Prometheus metrics, one registry per server. Services count what they do; `/metrics` serves it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tody_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tody_http_request_duration_seconds",
            "HTTP request latency by route and status.",
            ["route", "method", "status"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.queries = Counter(
            "tody_queries", "Queries run for users, by outcome.", ["outcome"], registry=self.registry
        )
        self.rows_ingested = Counter(
            "tody_rows_ingested", "Rows written into data sources.", registry=self.registry
        )
        self.pool_in_use = Gauge(
            "tody_engine_pool_in_use", "Engine query connections busy right now.", registry=self.registry
        )
        self.pool_size = Gauge(
            "tody_engine_pool_size", "Engine query connections in the pool.", registry=self.registry
        )
