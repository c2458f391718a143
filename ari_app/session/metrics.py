"""Prometheus metrics of the session store (exposed by the web app's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REDIS_HEALTHY = Gauge("iva_session_redis_healthy", "1 while the session store reaches Redis")
BUFFERED_WRITES = Gauge("iva_session_buffered_writes", "Session writes waiting in memory for Redis")
DROPPED_WRITES = Counter(
    "iva_session_dropped_writes", "Session writes dropped (buffer full during an outage, or rejected)"
)
REDIS_WRITE_SECONDS = Histogram(
    "iva_session_write_seconds",
    "Latency of one session write transaction to Redis",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CORRUPT_RECORDS = Counter("iva_session_corrupt_records", "Call records that failed to load")
LEASES_HELD = Gauge("iva_session_leases_held", "Call leases this instance holds")
LEASES_LOST = Counter("iva_session_leases_lost", "Leases this instance found taken by another")
