"""`janitor undo --run-id R [--device D] [--dry-run]`: put back what a run did (docs/undo.md).

Every device the run disabled is re-enabled (and untagged) if it is still disabled and still carries that
run's tag; every device it tagged is untagged if it still carries that tag; every device it deleted is
restored from deleted items (Entra joined and registered devices, for 30 days); hybrid joined objects are
reported with the on-premises steps. A device someone changed since is skipped with the reason. The undo
commands go through the queue and the worker's gates (`janitor work` applies them locally); `--dry-run`
reads each device now and says what the worker would do, writing nothing.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from janitor_cli._common import echo, fail, run


async def _undo(run_id: str, device: str | None, dry_run: bool, by: str, policy_path: Path | None) -> list[dict[str, str | None]]:
    from shared import bootstrap
    from shared.policy import load_policy
    from shared.undo.service import undo

    policy = load_policy(policy_path)
    audit, graph = bootstrap.audit_log(), bootstrap.graph()
    sender = None if dry_run else bootstrap.queue_sender()
    try:
        lines = await undo(
            audit=audit, graph=graph, sender=sender, policy=policy, run_id=run_id, device=device, dry_run=dry_run,
            requested_by=by, now=datetime.now(UTC),
        )  # fmt: skip
    finally:
        for port in (audit, graph, sender):
            if port is not None:
                await port.close()
    return [asdict(line) for line in lines]


def undo_command(
    run_id: Annotated[str, typer.Option("--run-id", help="The run to undo (its id from `janitor audit list`).")],
    device: Annotated[str | None, typer.Option("--device", help="Only this device: name, object id or deviceId.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be put back; write and queue nothing.")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Who asks (recorded in the audit log); default: your login.")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy YAML (default: JANITOR_POLICY).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per device.")] = False,
) -> None:
    """Undo a run (or one device of it): re-enable, untag, restore from deleted items; skip what changed since."""
    if not run_id.strip():
        raise fail("--run-id must name a run")
    lines = run(_undo(run_id.strip(), device, dry_run, by or getpass.getuser(), policy))
    for line in lines:
        if as_json:
            echo(json.dumps(line, ensure_ascii=False))
        else:
            echo(f"{line['device']}: {line['did']} -> {line['undo']}: {line['status']} ({line['reason']})")
    queued = sum(1 for line in lines if line["status"] == "queued")
    if not lines:
        echo(f"run {run_id}: nothing to undo (no acted disable, delete or tag" + (f" for {device})" if device else ")"), err=True)
    elif queued and not as_json:
        echo(f"queued {queued} undo command(s): the worker applies them (`janitor work` locally)", err=True)


def register(app: typer.Typer) -> None:
    app.command("undo")(undo_command)
