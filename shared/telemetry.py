"""Telemetry: a handful of counters, spans, and run/command/ticket ids on every log line.

Callers use three calls and nothing else:

    telemetry.count("decisions", decision="acted")
    with telemetry.context(run_id=run.id): ...
    with telemetry.span("scan"): ...

When APPLICATIONINSIGHTS_CONNECTION_STRING is set, `configure()` turns on OpenTelemetry export to
Application Insights (azure-monitor-opentelemetry, Entra ID auth through the managed identity, because the
resource has local auth off). When it is unset, every call is a cheap no-op: one dict lookup and a return.
Telemetry never stops the pipeline: a failure to configure the exporter is logged once and ignored.
Pass the ids with `context()`, never as `extra=` on a log call (the record already carries them).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: The correlation ids every log record and span carries (None when outside such a scope).
ID_FIELDS: tuple[str, ...] = ("run_id", "command_id", "ticket_id")
_IDS: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"janitor_{name}", default=None) for name in ID_FIELDS
}

#: Text format for console handlers (the CLI); in Azure the ids travel as custom dimensions instead.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [run=%(run_id)s cmd=%(command_id)s ticket=%(ticket_id)s] %(message)s"


@dataclass(frozen=True, slots=True)
class Metric:
    """A counter the project reports, with the attribute names a caller may pass."""

    name: str
    description: str
    attributes: tuple[str, ...] = ()


METRICS: Mapping[str, Metric] = {
    m.name: m
    for m in (
        Metric("devices_scanned", "Devices read from Graph by the scan."),
        Metric("findings", "Devices classified, by class.", ("device_class",)),
        Metric("decisions", "Terminal decisions of remediation commands, by kind (and action).", ("decision", "action")),
        Metric("commands_enqueued", "Remediation commands sent to the queue.", ("trigger",)),
        Metric("graph_throttled", "Graph 429 answers (top-level or inside a $batch) that were retried.", ("endpoint",)),
        Metric("breaker_halts", "Scan runs the blast-radius breaker halted.", ("reason",)),
    )
}

_METER_NAME = "entra_janitor"


class _State:
    """The live OpenTelemetry instruments; exists only while telemetry is on."""

    def __init__(self, meter_provider: Any, tracer_provider: Any) -> None:
        meter = meter_provider.get_meter(_METER_NAME)
        self.counters = {
            m.name: meter.create_counter(f"janitor.{m.name}", unit="1", description=m.description) for m in METRICS.values()
        }
        self.tracer = tracer_provider.get_tracer(_METER_NAME)
        self.meter_provider = meter_provider
        self.tracer_provider = tracer_provider


_state: _State | None = None
_lock = threading.Lock()
_factory_installed = False


# --------------------------------------------------------------------------- ids on log records


def current_ids() -> dict[str, str | None]:
    """The correlation ids in force here (run_id, command_id, ticket_id)."""
    return {name: var.get() for name, var in _IDS.items()}


@contextlib.contextmanager
def context(**ids: str | None) -> Generator[None]:
    """Scope in which log records and spans carry these ids; nested scopes override only what they name."""
    unknown = set(ids) - set(ID_FIELDS)
    if unknown:
        raise TypeError(f"telemetry.context() takes {', '.join(ID_FIELDS)}; not {', '.join(sorted(unknown))}")
    tokens = [(_IDS[name], _IDS[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def install_log_ids() -> None:
    """Make every LogRecord created in this process carry run_id/command_id/ticket_id ("-" when unset).

    A record factory (not a handler filter) so that records from every logger get them, whichever handler
    (console, the Functions worker, the OpenTelemetry exporter) finally writes them. Idempotent.
    """
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            for name, var in _IDS.items():
                if not hasattr(record, name):
                    setattr(record, name, var.get() or "-")
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


# --------------------------------------------------------------------------- counters and spans


def count(name: str, value: int = 1, /, **attributes: str) -> None:
    """Add `value` to counter `name`. Unknown names or attributes are a programming error (raises)."""
    metric = METRICS[name]
    if attributes and not attributes.keys() <= set(metric.attributes):
        raise TypeError(f"metric {name!r} takes attributes {metric.attributes}, not {sorted(attributes)}")
    state = _state
    if state is None:
        return
    state.counters[name].add(value, {k: str(v) for k, v in attributes.items()})


@contextlib.contextmanager
def span(name: str, **attributes: str | int | bool) -> Generator[None]:
    """A trace span around a unit of work (a scan, one command); carries the ids in force."""
    state = _state
    if state is None:
        yield
        return
    ids = {k: v for k, v in current_ids().items() if v}
    with state.tracer.start_as_current_span(f"janitor.{name}", attributes={**ids, **attributes}):
        yield


def enabled() -> bool:
    """True when counters and spans are being exported."""
    return _state is not None


# --------------------------------------------------------------------------- configuration


def configure(
    env: Mapping[str, str] | None = None, *, metric_reader: Any = None, span_exporter: Any = None
) -> bool:
    """Turn telemetry on when the connection string is set (or when a test passes its own reader/exporter).

    Idempotent and safe: returns whether telemetry is on; never raises because of the exporter.
    """
    global _state
    install_log_ids()
    environ = os.environ if env is None else env
    with _lock:
        if _state is not None:
            return True
        if metric_reader is not None or span_exporter is not None:
            _state = _local_pipeline(metric_reader, span_exporter)
            return True
        connection_string = environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or ""
        if not connection_string.strip():
            return False
        try:
            _state = _azure_monitor_pipeline(connection_string, environ.get("AZURE_CLIENT_ID") or None)
        except Exception as exc:  # telemetry must never stop a run
            log.warning("telemetry: Application Insights export not started (%s); continuing without it", exc)
            return False
        return True


def shutdown() -> None:
    """Flush and turn telemetry off (tests; the process end flushes on its own in Azure)."""
    global _state
    with _lock:
        state, _state = _state, None
    if state is not None:
        for provider in (state.meter_provider, state.tracer_provider):
            with contextlib.suppress(Exception):
                provider.shutdown()


def _local_pipeline(metric_reader: Any, span_exporter: Any) -> _State:
    """Private providers feeding the given reader/exporter (not the global ones: those can be set once)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    meter_provider = MeterProvider(metric_readers=[metric_reader] if metric_reader is not None else [])
    tracer_provider = TracerProvider()
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return _State(meter_provider, tracer_provider)


def _azure_monitor_pipeline(connection_string: str, client_id: str | None) -> _State:
    """Application Insights with Entra ID auth (the managed identity), exporting our loggers' records."""
    # (azure-monitor-opentelemetry leaves configure_azure_monitor's **kwargs unannotated, hence the ignore.)
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor  # pyright: ignore[reportUnknownVariableType]
    from opentelemetry import metrics, trace

    configure_azure_monitor(
        connection_string=connection_string,
        credential=ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential(),
        logger_name="shared",  # the project's own loggers; their records carry the ids as custom dimensions
        enable_live_metrics=False,
    )
    return _State(metrics.get_meter_provider(), trace.get_tracer_provider())
