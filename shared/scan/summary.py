"""What a scan run found and did: returned to the caller, printed by the CLI, written to the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.classify import CLASS_NAMES


def empty_findings() -> dict[str, int]:
    """Every class (healthy included) at zero, in rule order."""
    return dict.fromkeys(CLASS_NAMES, 0)


@dataclass(slots=True)
class ScanSummary:
    """One run. `to_json()` is the public shape (`janitor scan --json`); `audit_data()` the run record."""

    run_id: str
    trigger: str
    started_at: datetime
    policy_hash: str
    mode: str
    devices_scanned: int = 0
    pages: int = 0
    findings: dict[str, int] = field(default_factory=empty_findings)
    actions: dict[str, int] = field(default_factory=dict[str, int])  # proposed action -> candidates
    commands_enqueued: int = 0
    destructive_proposed: int = 0
    blocked: int = 0  # device-write candidates not queued because the breaker halted the run
    halted: bool = False
    halt_reason: str | None = None
    would_halt: str | None = None  # report mode: the breaker would have halted an enforce run (what to raise)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict[str, float])  # seconds per phase
    notes: list[str] = field(default_factory=list[str])
    breaker: dict[str, Any] = field(default_factory=dict[str, Any])
    admin_notification: dict[str, Any] = field(default_factory=dict[str, Any])
    reading: dict[str, Any] = field(default_factory=dict[str, Any])  # how /devices was read (shared.scan.partitions.ReadReport)

    def to_json(self) -> dict[str, Any]:
        """Exactly the documented keys: run_id, devices_scanned, findings, commands_enqueued, halted, halt_reason."""
        return {
            "run_id": self.run_id,
            "devices_scanned": self.devices_scanned,
            "findings": dict(self.findings),
            "commands_enqueued": self.commands_enqueued,
            "halted": self.halted,
            "halt_reason": self.halt_reason,
        }

    def audit_data(self) -> dict[str, Any]:
        """The `data` of the run's audit record (kind "run")."""
        return {
            **self.to_json(),
            "trigger": self.trigger,
            "mode": self.mode,
            "policy_hash": self.policy_hash,
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "timings": dict(self.timings),
            "pages": self.pages,
            "actions": dict(self.actions),
            "destructive_proposed": self.destructive_proposed,
            "blocked": self.blocked,
            "breaker": dict(self.breaker),
            "would_halt": self.would_halt,
            "notes": list(self.notes),
            "admin_notification": dict(self.admin_notification),
            "reading": dict(self.reading),
        }
