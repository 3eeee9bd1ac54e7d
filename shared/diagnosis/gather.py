"""Gather the facts for one device through the Graph port, then hand them to the pure engine.

Only reads: the device (by name, object id or deviceId), its owner or the named user, the join policy and
the user's devices (join scope and quota), and the Intune record. A fact that cannot be read (missing
permission, user not found) becomes a note in the evidence instead of failing the diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from shared import settings
from shared.diagnosis.dsregcmd import DsregcmdParseError, DsregStatus, parse
from shared.diagnosis.engine import diagnose
from shared.diagnosis.model import Diagnosis, Facts
from shared.errors import GraphError, PermanentError
from shared.models import Device
from shared.policy import Policy
from shared.ports import GraphPort, Owner
from shared.scope import ScopePolicyError, ScopeResult, check_join_scope

_EPOCH = datetime.min.replace(tzinfo=UTC)
#: The nil GUID never identifies a directory object; callers use it for "no tenant object known".
NIL_GUID = "00000000-0000-0000-0000-000000000000"


def choose_device(candidates: list[Device], local: DsregStatus | None) -> Device | None:
    """The object the ticket is about: the one whose deviceId the device reports, else the most recently used."""
    if not candidates:
        return None
    if local is not None and local.device_id:
        for device in candidates:
            if (device.device_id or "").lower() == local.device_id:
                return device

    def recency(d: Device) -> tuple[bool, datetime, datetime]:
        seen = d.approximate_last_sign_in_date_time or _EPOCH
        registered = d.registration_date_time or _EPOCH
        return (d.account_enabled is not False, _aware(seen), _aware(registered))

    return max(candidates, key=recency)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def _find(graph: GraphPort, device_ref: str, local: DsregStatus | None) -> list[Device]:
    found = list(await graph.find_devices(device_ref)) if device_ref else []
    if local is not None and local.device_id and not any((d.device_id or "").lower() == local.device_id for d in found):
        for device in await graph.find_devices(local.device_id):
            if all(d.id != device.id for d in found):
                found.append(device)
    return found


async def _user(
    graph: GraphPort, user: str | None, device: Device | None, local: DsregStatus | None, notes: list[str]
) -> Owner | None:
    """The named user, else the device's first registered owner, else the UPN the dsregcmd output shows."""
    try:
        if user:
            found = await graph.get_user(user)
            if found is None:
                notes.append(f"user {user!r} was not found in the tenant")
            return found
        if device is not None:
            owners = await graph.registered_owners(device.id)
            if owners:
                return owners[0]
        if local is not None and local.user_upn:
            return await graph.get_user(local.user_upn)
    except GraphError as exc:
        notes.append(f"the user could not be read: {exc}")
    return None


async def gather_facts(
    graph: GraphPort,
    device_ref: str,
    *,
    dsregcmd_text: str | None,
    user: str | None,
    policy: Policy,
    now: datetime,
    tenant_id: str | None = None,
) -> Facts:
    """Read everything the engine needs. Unreadable optional facts become notes, never exceptions."""
    local: DsregStatus | None = None
    local_problem: str | None = None
    if dsregcmd_text:
        try:
            local = parse(dsregcmd_text)
        except DsregcmdParseError as exc:
            local_problem = str(exc)
    notes: list[str] = []
    if device_ref.strip() == NIL_GUID:  # "no tenant object known": name the device as it names itself, if it does
        device_ref = (local.value("Device Name") or "").split(".")[0] if local is not None else ""
    candidates = await _find(graph, device_ref, local)
    device = choose_device(candidates, local)
    owner = await _user(graph, user, device, local, notes)

    scope: ScopeResult | None = None
    scope_problem: str | None = None
    user_devices: list[Device] = []
    if owner is not None:
        try:
            scope = await check_join_scope(graph, owner.id)
            if scope.quota_reached:
                user_devices = list(await graph.user_registered_devices(owner.id))
        except (ScopePolicyError, PermanentError, GraphError) as exc:
            scope_problem = f"join scope and quota could not be read: {exc}"
    intune_known, intune_last_sync = False, None
    if device is not None and device.device_id:
        try:
            intune_last_sync = await graph.managed_device_last_sync(device.device_id)
            intune_known = True
        except GraphError as exc:
            notes.append(f"Intune record not read: {exc}")
    return Facts(
        device_ref=device_ref,
        now=now,
        device=device,
        candidates=candidates,
        local=local,
        local_problem=local_problem,
        user=owner,
        user_ref=user if owner is None else None,
        scope=scope,
        scope_problem=scope_problem,
        user_devices=user_devices,
        policy=policy,
        intune_last_sync=intune_last_sync,
        intune_known=intune_known,
        tenant_id=tenant_id,
        notes=notes,
    )


async def diagnose_device(
    graph: GraphPort,
    device_ref: str,
    *,
    dsregcmd_text: str | None,
    user: str | None,
    policy: Policy,
    now: datetime,
    tenant_id: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Diagnosis:
    """Diagnose one device (name, object id or deviceId) from the tenant, plus dsregcmd text when given.

    `tenant_id` defaults to the AZURE_TENANT_ID setting; when known, a device reporting another TenantId is
    diagnosed as mismatched (stage 3). Only Graph reads happen here.
    """
    if tenant_id is None:
        tenant_id = settings.get("AZURE_TENANT_ID", env)
    facts = await gather_facts(
        graph, device_ref, dsregcmd_text=dsregcmd_text, user=user, policy=policy, now=now, tenant_id=tenant_id
    )
    return diagnose(facts)
