"""`janitor dsregcmd FILE`, `janitor diagnose DEVICE` and `janitor ticket FILE.json`: diagnosis from a terminal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from janitor_cli._common import echo, fail, run
from shared.diagnosis import Diagnosis, DsregcmdParseError, DsregStatus, parse_dsregcmd
from shared.diagnosis.dsregcmd import decode_text

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
PolicyOption = Annotated[Path | None, typer.Option("--policy", help="Policy YAML (default: JANITOR_POLICY, else the defaults).")]


def _read_dsregcmd(path: Path) -> tuple[str, DsregStatus]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return decode_text(data), parse_dsregcmd(data)
    except DsregcmdParseError as exc:
        raise fail(f"{path}: {exc}") from None


def _print_status(status: DsregStatus) -> None:
    for name in (
        "AzureAdJoined",
        "DomainJoined",
        "WorkplaceJoined",
        "DeviceId",
        "TenantId",
        "TenantName",
        "DeviceAuthStatus",
        "AzureAdPrt",
    ):
        if name in status.fields or status.value(name) is not None:
            echo(f"{name:>18} : {status.value(name) or ''}")
    echo(f"{'join type':>18} : {status.join_type}")
    for test, result in status.failed_tests().items():
        echo(f"{test:>18} : {result}")
    for code in status.error_codes:
        echo(f"{'error code':>18} : {code.code} ({code.field})")


def dsregcmd(
    file: Annotated[Path, typer.Argument(help="Text saved from `dsregcmd /status` (any Windows 10/11 version).")],
    as_json: JsonOption = False,
) -> None:
    """Parse `dsregcmd /status` output into the tool's own field names plus the error codes it reports."""
    _, status = _read_dsregcmd(file)
    if as_json:
        echo(json.dumps(status.to_json(), indent=2))
    else:
        _print_status(status)


def render(diagnosis: Diagnosis) -> str:
    """A diagnosis as text for a terminal or a ticket comment."""
    d = diagnosis
    head = "healthy" if d.stage == "healthy" else f"stage {d.stage}"
    lines = [f"{head}: {d.title} (confidence: {d.confidence})", f"  {d.summary}", "", "next step:", f"  {d.next_step}"]
    if d.remediation:
        lines += ["", "stale devices of the user (remove to free the quota):"]
        for s in d.remediation:
            seen = s.last_sign_in.date().isoformat() if s.last_sign_in else "never signed in"
            lines.append(f"  - {s.display_name or '?'}  id {s.id}  last sign-in {seen}")
    if d.error_codes:
        lines += ["", "error codes:"]
        for c in d.error_codes:
            meaning = c.meaning or "not in the catalogue"
            lines.append(f"  {c.code} {c.symbol or ''} ({c.field}): {meaning}".replace("  (", " ("))
    lines += ["", "evidence:"]
    lines += [f"  [{e.status}] {e.check}: {e.detail}" for e in d.evidence]
    return "\n".join(lines)


async def _diagnose(device: str, dsregcmd_file: Path | None, user: str | None, policy_path: Path | None, as_json: bool) -> None:
    from shared import bootstrap
    from shared.diagnosis import diagnose_device
    from shared.policy import load_policy

    text = _read_dsregcmd(dsregcmd_file)[0] if dsregcmd_file else None
    policy = load_policy(policy_path)
    graph = bootstrap.graph()
    try:
        diagnosis = await diagnose_device(graph, device, dsregcmd_text=text, user=user, policy=policy, now=datetime.now(UTC))
    finally:
        await graph.close()
    echo(json.dumps(diagnosis.to_builtins(), indent=2, default=str) if as_json else render(diagnosis))


def diagnose(
    device: Annotated[str, typer.Argument(help="Device display name, object id or deviceId.")],
    dsregcmd_file: Annotated[Path | None, typer.Option("--dsregcmd", help="`dsregcmd /status` output from the device.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="UPN or object id of the user who tried to join.")] = None,
    policy: PolicyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Which stage fails (1 eligibility .. 5 downstream, or healthy), the evidence, and the next step."""
    run(_diagnose(device, dsregcmd_file, user, policy, as_json))


async def _drain_local(service: Any, policy_path: Path | None) -> str | None:
    """Work the local queue with the worker; returns why it was not worked, if it was not."""
    try:
        from shared.worker import drain, open_worker
    except ImportError:
        return "the worker is not installed: the request stays queued (run `janitor work` later)"
    from shared import bootstrap
    from shared.policy import load_policy

    worker = open_worker(policy=load_policy(policy_path), graph=service.graph(), audit=service.audit())
    receiver = bootstrap.queue_receiver()
    try:
        await drain(receiver, worker, until_empty=True)
    finally:
        await receiver.close()
        close = getattr(worker.durable_budget, "close", None)
        if close is not None:
            await close()
    return None


async def _ticket(file: Path, body: bytes, source: str | None, policy_path: Path | None, as_json: bool) -> None:
    from shared.tickets import PayloadError, PayloadTooLarge, ticket_status
    from shared.tickets.service import TicketService

    service = TicketService()
    notes: list[str] = []
    try:
        try:
            result = await service.intake().submit(body, source=source)
        except (PayloadError, PayloadTooLarge) as exc:
            problems = exc.problems if isinstance(exc, PayloadError) else [str(exc)]
            raise fail(f"{file}: " + "; ".join(problems)) from None
        why = await _drain_local(service, policy_path)
        if why:
            notes.append(why)
        try:
            deliveries = await service.deliver_callbacks()
            notes += [f"callback {d.url}: {'delivered' if d.ok else d.error}" for d in deliveries]
        except Exception as exc:  # a callback problem must not hide the result
            notes.append(f"callbacks not delivered: {exc}")
        doc = await ticket_status(service.audit(), result.request_id)
    finally:
        await service.close()
    doc = dict(doc or {}, duplicate=result.duplicate, notes=notes)
    if as_json:
        echo(json.dumps(doc, indent=2, default=str))
        return
    echo(
        f"request {result.request_id}: {doc.get('state')}"
        + (" (already submitted: nothing new queued)" if result.duplicate else "")
    )
    if doc.get("reason"):
        echo(f"decision: {doc.get('decision')}: {doc['reason']}")
    if doc.get("diagnosis"):
        import msgspec

        echo(render(msgspec.convert(doc["diagnosis"], Diagnosis)))
    for note in notes:
        echo(f"note: {note}", err=True)


def ticket(
    file: Annotated[Path, typer.Argument(help="Ticket payload (generic JSON, a Jira issue webhook or a ServiceNow message).")],
    source: Annotated[str | None, typer.Option("--source", help="generic | jira | servicenow (default: detected).")] = None,
    policy: PolicyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a ticket payload to the local pipeline (intake, queue, worker) and print the result."""
    try:
        body = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror}") from None
    run(_ticket(file, body, source, policy, as_json))


def register(app: typer.Typer) -> None:
    app.command("dsregcmd")(dsregcmd)
    app.command("diagnose")(diagnose)
    app.command("ticket")(ticket)
