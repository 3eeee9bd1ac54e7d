"""shared.telemetry: counters and spans when configured, a cheap no-op when not, ids on every log record."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry


@pytest.fixture(autouse=True)
def _telemetry_off():
    telemetry.shutdown()
    yield
    telemetry.shutdown()


def sums(reader: InMemoryMetricReader) -> dict[tuple[str, tuple], int]:
    """(metric name, sorted attributes) -> value, from what the reader collected."""
    out: dict[tuple[str, tuple], int] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    out[(metric.name, tuple(sorted(point.attributes.items())))] = point.value
    return out


def test_off_without_a_connection_string_and_calls_are_no_ops():
    assert telemetry.configure({}) is False
    assert not telemetry.enabled()
    telemetry.count("decisions", decision="acted")
    with telemetry.span("scan"):
        pass


def test_unknown_metrics_and_attributes_are_programming_errors_even_when_off():
    with pytest.raises(KeyError):
        telemetry.count("devices_scaned")
    with pytest.raises(TypeError, match="device_class"):
        telemetry.count("findings", cls="stale")


def test_counters_reach_the_reader_with_their_attributes():
    reader = InMemoryMetricReader()
    assert telemetry.configure({}, metric_reader=reader) is True
    telemetry.count("devices_scanned", 999)
    telemetry.count("devices_scanned", 1)
    telemetry.count("findings", 3, device_class="stale")
    telemetry.count("findings", device_class="pending")
    telemetry.count("decisions", decision="acted", action="disable")
    telemetry.count("decisions", decision="acted", action="disable")
    telemetry.count("graph_throttled", endpoint="update_device")
    telemetry.count("breaker_halts", reason="fraction")
    got = sums(reader)
    assert got[("janitor.devices_scanned", ())] == 1000
    assert got[("janitor.findings", (("device_class", "stale"),))] == 3
    assert got[("janitor.findings", (("device_class", "pending"),))] == 1
    assert got[("janitor.decisions", (("action", "disable"), ("decision", "acted")))] == 2
    assert got[("janitor.graph_throttled", (("endpoint", "update_device"),))] == 1
    assert got[("janitor.breaker_halts", (("reason", "fraction"),))] == 1


def test_spans_carry_the_ids_in_force():
    exporter = InMemorySpanExporter()
    telemetry.configure({}, span_exporter=exporter)
    with telemetry.context(run_id="run-7"), telemetry.span("scan", devices=40):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "janitor.scan"
    assert span.attributes["run_id"] == "run-7" and span.attributes["devices"] == 40


def test_every_log_record_carries_run_command_and_ticket_ids(caplog):
    telemetry.install_log_ids()
    log = logging.getLogger("shared.worker.test")
    with caplog.at_level(logging.INFO, logger="shared.worker.test"):
        log.info("outside")
        with telemetry.context(run_id="r1"):
            log.info("in the run")
            with telemetry.context(command_id="c9", ticket_id="T-1"):
                log.info("in a command")
            log.info("back in the run")
    got = [(r.getMessage(), r.run_id, r.command_id, r.ticket_id) for r in caplog.records]
    assert got == [
        ("outside", "-", "-", "-"),
        ("in the run", "r1", "-", "-"),
        ("in a command", "r1", "c9", "T-1"),
        ("back in the run", "r1", "-", "-"),
    ]
    formatted = logging.Formatter(telemetry.LOG_FORMAT).format(caplog.records[2])
    assert "[run=r1 cmd=c9 ticket=T-1] in a command" in formatted


async def test_ids_follow_concurrent_tasks_without_leaking_between_them():
    async def handle(command: str) -> str | None:
        with telemetry.context(command_id=command):
            await asyncio.sleep(0.01)
            return telemetry.current_ids()["command_id"]

    with telemetry.context(run_id="r2"):
        results = await asyncio.gather(*(handle(f"c{i}") for i in range(5)))
    assert results == [f"c{i}" for i in range(5)]
    assert telemetry.current_ids() == {"run_id": None, "command_id": None, "ticket_id": None}


def test_context_refuses_unknown_ids():
    with pytest.raises(TypeError), telemetry.context(device="x"):
        pass


def test_the_connection_string_turns_on_azure_monitor_with_the_managed_identity(monkeypatch):
    import azure.monitor.opentelemetry as distro

    calls = []
    monkeypatch.setattr(distro, "configure_azure_monitor", lambda **kwargs: calls.append(kwargs))
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
           "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111"}  # fmt: skip
    assert telemetry.configure(env) is True
    (kwargs,) = calls
    assert kwargs["connection_string"] == env["APPLICATIONINSIGHTS_CONNECTION_STRING"]
    assert type(kwargs["credential"]).__name__ == "ManagedIdentityCredential"
    assert kwargs["logger_name"] == "shared"
    assert telemetry.configure(env) is True and len(calls) == 1, "configure() is idempotent"


def test_a_broken_exporter_never_stops_the_app(monkeypatch, caplog):
    import azure.monitor.opentelemetry as distro

    def broken(**kwargs):
        raise RuntimeError("ingestion endpoint unreachable")

    monkeypatch.setattr(distro, "configure_azure_monitor", broken)
    with caplog.at_level(logging.WARNING):
        assert telemetry.configure({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}) is False
    assert "ingestion endpoint unreachable" in caplog.text
    telemetry.count("decisions", decision="failed")  # still a no-op, no error


def test_counting_while_off_still_refuses_unknown_names_and_attributes(monkeypatch: pytest.MonkeyPatch):
    """Off (no Application Insights) a count is a no-op, but a wrong name or attribute fails in every test run."""
    monkeypatch.setattr(telemetry, "_state", None)
    telemetry.count("findings", device_class="stale")
    with pytest.raises(TypeError, match="takes attributes"):
        telemetry.count("findings", colour="red")
    with pytest.raises(KeyError):
        telemetry.count("no_such_metric")
