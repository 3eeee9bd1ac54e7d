"""The records diagnosis works with: the facts it is given and the Diagnosis it returns.

Facts are gathered by `shared.diagnosis.gather` (Graph I/O); `shared.diagnosis.engine.diagnose` turns them
into a Diagnosis without any I/O, so every stage can be tested from plain records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from shared.diagnosis.dsregcmd import DsregStatus
from shared.models import Device
from shared.policy import Policy
from shared.ports import Owner
from shared.scope import ScopeResult

Stage = Literal[1, 2, 3, 4, 5, "healthy"]
Confidence = Literal["confirmed", "likely", "needs_evidence"]
CheckStatus = Literal["pass", "fail", "info", "unknown", "not_applicable"]

#: One line per stage, in the words a ticket reader understands.
STAGE_TITLES: dict[int | str, str] = {
    1: "tenant eligibility: the user may not join (join scope) or holds too many devices (quota)",
    2: "registration never completed: the tenant object exists but is pending",
    3: "local state and tenant state disagree",
    4: "the registration transaction with the Device Registration Service did not complete",
    5: "join is healthy; a later layer fails (PRT, MDM enrollment, compliance)",
    "healthy": "healthy: join, tenant object and sign-in token check out",
}


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """One observation, in validation order. `check` names what was looked at (e.g. "tenant.object")."""

    check: str
    status: CheckStatus
    detail: str
    stage: int | None = None  # the stage this observation belongs to
    data: dict[str, Any] = {}


class CodeInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An error code found in the evidence, with the catalogue's meaning (None when not catalogued)."""

    code: str
    field: str  # where it was seen (dsregcmd field name)
    symbol: str | None = None
    meaning: str | None = None
    next_step: str | None = None
    stage: int | None = None
    source: str | None = None


class StaleDevice(msgspec.Struct, frozen=True, kw_only=True):
    """A device of the user's that counts against the quota and looks unused: the quota remediation."""

    id: str
    device_id: str | None
    display_name: str | None
    trust_type: str | None
    last_sign_in: datetime | None
    registered: datetime | None
    account_enabled: bool | None


class DeviceSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The tenant object the diagnosis is about (None in Diagnosis when the tenant has none)."""

    id: str
    device_id: str | None
    display_name: str | None
    trust_type: str | None
    account_enabled: bool | None
    operating_system: str | None
    last_sign_in: datetime | None
    registered: datetime | None


class Diagnosis(msgspec.Struct, frozen=True, kw_only=True):
    """The failing stage (1-5, or "healthy"), the evidence for it and the next step for that stage.

    `recommends_rejoin` is True only when the evidence shows registration is incomplete or mismatched.
    """

    stage: Stage
    title: str
    summary: str
    next_step: str
    confidence: Confidence
    evidence: list[Evidence]
    recommends_rejoin: bool = False
    error_codes: list[CodeInfo] = []
    remediation: list[StaleDevice] = []  # stage 1 quota: the user's stale devices to remove
    device: DeviceSummary | None = None
    user: str | None = None
    checked_at: datetime | None = None

    def to_builtins(self) -> dict[str, Any]:
        """JSON-ready form (audit record data, API answers, `--json`)."""
        return msgspec.to_builtins(self)


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the engine looks at. Missing knowledge is None (unknown), never a guess.

    `device` is the tenant object chosen for the ticket; `candidates` every object that matched the
    reference (duplicates from re-joins show up here). `tenant_id` is the directory the janitor manages,
    when configured, so a device reporting another TenantId is caught.
    """

    device_ref: str
    now: datetime
    device: Device | None = None
    candidates: list[Device] = []
    local: DsregStatus | None = None
    local_problem: str | None = None  # dsregcmd text was given but could not be read
    user: Owner | None = None
    user_ref: str | None = None  # as named by the ticket, when it could not be resolved
    scope: ScopeResult | None = None
    scope_problem: str | None = None
    user_devices: list[Device] = []
    policy: Policy = Policy()  # stale thresholds for the quota remediation
    intune_last_sync: datetime | None = None
    intune_known: bool = False  # True when the Intune record was looked up (None sync = not enrolled)
    tenant_id: str | None = None
    notes: list[str] = []  # facts that could not be gathered (missing permission, ...)
