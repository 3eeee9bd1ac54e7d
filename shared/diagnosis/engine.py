"""The stage engine: `diagnose(facts) -> Diagnosis`, pure (no I/O; `facts.now` is the clock).

Validation order, as support engineers should work: tenant eligibility (join scope and quota), local state
(dsregcmd), tenant object, connectivity (only when the evidence points there), downstream layers (only once
the join is proven healthy). The first check that fails names the stage. Leaving and re-joining a device
is recommended only when the evidence shows registration is incomplete or mismatched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared import tags
from shared.classify import ClassifyContext, DeviceClass, classify, is_pending, is_registration_unclear, siblings_of
from shared.classify.rules import AUTOPILOT_PREFIX
from shared.diagnosis.catalogue import lookup
from shared.diagnosis.dsregcmd import DsregStatus
from shared.diagnosis.model import (
    STAGE_TITLES,
    CodeInfo,
    Confidence,
    DeviceSummary,
    Diagnosis,
    Evidence,
    Facts,
    Stage,
    StaleDevice,
)
from shared.jsonshape import is_collection, is_dict
from shared.models import Device

#: Classes of the user's other devices that are safe to propose for removal when the quota is the cause.
QUOTA_REMEDIATION_CLASSES = frozenset(
    {DeviceClass.STALE, DeviceClass.NO_SIGNIN_RECORD, DeviceClass.EXPIRED_DISABLED, DeviceClass.DUPLICATE}
)
#: dsregcmd "Error Phase" values that mean the transaction stopped before the join request itself.
NETWORK_PHASES = frozenset({"pre-check", "precheck", "discover", "auth"})

#: What one diagnosis keeps (it is stored in the audit log and sent to callbacks; a 10 KB dsregcmd output can
#: name 1,700 codes): error codes (catalogued ones first), items of any list and characters of any text in
#: evidence data, characters of a sentence (summary, next step, evidence detail), quota remediation devices.
#: The checks themselves see everything.
MAX_CODES = 32
MAX_LISTED = 5
MAX_VALUE_CHARS = 512
MAX_TEXT_CHARS = 2_000
MAX_REMEDIATION = 50

NEED_DSREGCMD = (
    "Attach the output of `dsregcmd /status` from the device (run it once as the signed-in user and once from an "
    "elevated prompt, which runs the diagnostics as SYSTEM): its Diagnostic Data names the failing phase and code."
)


class _Verdict(Exception):
    """Raised by a check to stop the walk with a result (keeps each check a short, flat function)."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis


class _Walk:
    """State of one diagnosis: the facts, the evidence collected so far, derived flags."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.evidence: list[Evidence] = []
        self.local: DsregStatus | None = facts.local
        self.device: Device | None = facts.device
        self.codes: list[CodeInfo] = code_infos(facts.local)
        self.hybrid = bool(
            (self.device is not None and self.device.trust_type == "ServerAd")
            or (self.local is not None and self.local.domain_joined)
        )
        self.autopilot = self.device is not None and any(p[:7].upper() == AUTOPILOT_PREFIX for p in self.device.physical_ids)
        self.registered_only = bool(
            (self.device is not None and self.device.trust_type == "Workplace")
            or (self.local is not None and self.local.join_type == "registered")
        )

    # ------------------------------------------------------------------ helpers

    def note(self, check: str, status: str, detail: str, stage: int | None = None, **data: Any) -> None:
        evidence = Evidence(check=check, status=status, detail=_clip(detail, MAX_TEXT_CHARS), stage=stage, data=_plain(data))  # type: ignore[arg-type]
        self.evidence.append(evidence)

    def codes_for(self, stage: int) -> list[CodeInfo]:
        return [c for c in self.codes if c.stage == stage]

    def finish(
        self,
        stage: Stage,
        summary: str,
        next_step: str,
        confidence: Confidence,
        *,
        rejoin: bool = False,
        remediation: list[StaleDevice] | None = None,
    ) -> _Verdict:
        user = self.facts.user
        kept = _kept_codes(self.codes)
        if len(kept) < len(self.codes):
            self.note("local.codes", "info", f"{len(self.codes) - len(kept)} more error codes reported; {MAX_CODES} kept")
        diagnosis = Diagnosis(
            stage=stage,
            title=STAGE_TITLES[stage],
            summary=_clip(summary, MAX_TEXT_CHARS),
            next_step=_clip(next_step, MAX_TEXT_CHARS),
            confidence=confidence,
            evidence=list(self.evidence),
            recommends_rejoin=rejoin,
            error_codes=kept,
            remediation=(remediation or [])[:MAX_REMEDIATION],
            device=_summary(self.device),
            user=(user.user_principal_name or user.id) if user is not None else self.facts.user_ref,
            checked_at=self.facts.now,
        )
        return _Verdict(diagnosis)


def diagnose(facts: Facts) -> Diagnosis:
    """The failing stage, its evidence and next step; "healthy" when every check passes."""
    walk = _Walk(facts)
    try:
        _lookup(walk)
        _eligibility(walk)
        _local_state(walk)
        _tenant_object(walk)
        _connectivity(walk)
        _downstream(walk)
    except _Verdict as verdict:
        return verdict.diagnosis
    raise AssertionError("the downstream check always ends the walk")  # pragma: no cover


# --------------------------------------------------------------------------- evidence helpers


def code_infos(local: DsregStatus | None) -> list[CodeInfo]:
    """Every error code in the dsregcmd output, with the catalogue's meaning where it has one."""
    if local is None:
        return []
    out: list[CodeInfo] = []
    seen: set[tuple[str, str]] = set()
    for ref in local.error_codes:
        if (ref.code, ref.field) in seen:
            continue
        seen.add((ref.code, ref.field))
        entry = lookup(ref.code)
        out.append(
            CodeInfo(
                code=ref.code,
                field=_clip(ref.field, MAX_VALUE_CHARS),
                symbol=entry.symbol if entry else None,
                meaning=entry.meaning if entry else None,
                next_step=entry.next_step if entry else None,
                stage=entry.stage if entry else None,
                source=entry.source if entry else None,
            )
        )
    return out


def _kept_codes(codes: list[CodeInfo]) -> list[CodeInfo]:
    """All codes when few; else the first MAX_CODES, catalogued ones first (they are what the checks act on)."""
    return codes if len(codes) <= MAX_CODES else sorted(codes, key=lambda c: c.stage is None)[:MAX_CODES]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return _clip(value, MAX_VALUE_CHARS)
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dict(value):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if is_collection(value):
        return [_plain(v) for v in list(value)[:MAX_LISTED]]
    return value


def _summary(device: Device | None) -> DeviceSummary | None:
    if device is None:
        return None
    return DeviceSummary(
        id=device.id,
        device_id=device.device_id,
        display_name=device.display_name,
        trust_type=device.trust_type,
        account_enabled=device.account_enabled,
        operating_system=device.operating_system,
        last_sign_in=device.approximate_last_sign_in_date_time,
        registered=device.registration_date_time,
    )


def _first_step(codes: Iterable[CodeInfo], fallback: str) -> str:
    for code in codes:
        if code.next_step:
            return f"{code.code} ({code.symbol or 'code'}): {code.next_step}"
    return fallback


def _join_established(walk: _Walk) -> bool:
    """A complete, enabled tenant object exists for this device, and the local state (if known) agrees."""
    device, local = walk.device, walk.local
    if device is None or device.account_enabled is False or is_pending(device):
        return False
    if local is None:
        return True
    if local.device_id and device.device_id and local.device_id != (device.device_id or "").lower():
        return False
    return bool(local.azure_ad_joined or (walk.registered_only and local.workplace_joined))


def _network_evidence(walk: _Walk) -> list[str]:
    """Reasons to look at connectivity: failed pre-join tests, a network phase, network codes, auth status."""
    local = walk.local
    if local is None:
        return []
    reasons = [f"{name}: {value}" for name, value in local.failed_tests().items()]
    phase = (local.value("Error Phase") or "").strip().lower()
    if phase in NETWORK_PHASES:
        reasons.append(f"Error Phase: {phase}")
    status = (local.device_auth_status or "").upper()
    if status.startswith("FAILED") and "ERROR" in status and "DISABLED" not in status:
        reasons.append(f"DeviceAuthStatus: {local.device_auth_status} (the test needs network access as SYSTEM)")
    prt_fields = {f for block in local.prt_diagnostics for f in block.fields}
    reasons += [f"{c.field}: {c.code} ({c.symbol or 'network'})" for c in walk.codes_for(4) if c.field not in prt_fields]
    return reasons


def _quota_remediation(facts: Facts) -> list[StaleDevice]:
    """The user's devices that count against the quota and the scan would call stale/duplicate/expired."""
    ctx = ClassifyContext(policy=facts.policy, now=facts.now)
    counted = [d for d in facts.user_devices if d.trust_type != "ServerAd" and (facts.device is None or d.id != facts.device.id)]
    ctx = ctx.with_siblings(siblings_of(counted))
    out = [d for d in counted if classify(d, ctx).device_class in QUOTA_REMEDIATION_CLASSES]
    out.sort(key=lambda d: d.approximate_last_sign_in_date_time or d.registration_date_time or facts.now)
    return [
        StaleDevice(
            id=d.id,
            device_id=d.device_id,
            display_name=d.display_name,
            trust_type=d.trust_type,
            last_sign_in=d.approximate_last_sign_in_date_time,
            registered=d.registration_date_time,
            account_enabled=d.account_enabled,
        )
        for d in out
    ]


# --------------------------------------------------------------------------- the checks, in order


def _lookup(walk: _Walk) -> None:
    facts = walk.facts
    if facts.local_problem:
        walk.note("local.dsregcmd", "unknown", f"the attached dsregcmd output could not be read: {facts.local_problem}")
    for note in facts.notes:
        walk.note("gather", "unknown", note)
    others = [d for d in facts.candidates if walk.device is None or d.id != walk.device.id]
    if others:
        walk.note(
            "tenant.lookup",
            "info",
            f"{len(facts.candidates)} tenant objects match {facts.device_ref!r} (re-joins leave older objects behind)",
            objects=[
                {
                    "id": d.id,
                    "deviceId": d.device_id,
                    "trustType": d.trust_type,
                    "lastSignIn": d.approximate_last_sign_in_date_time,
                }
                for d in facts.candidates
            ],
        )


def _eligibility(walk: _Walk) -> None:
    """Stage 1: join scope (Entra join only) and device quota, when the join is not already established."""
    facts = walk.facts
    if walk.hybrid:
        walk.note("eligibility", "not_applicable", "hybrid join: the join scope and the device quota do not apply", stage=1)
        return
    if walk.autopilot and facts.user is None and facts.user_ref is None:
        walk.note(
            "eligibility",
            "not_applicable",
            "Autopilot device without a user (self-deploying): the join scope does not apply",
            stage=1,
        )
        return
    scope = facts.scope
    established = _join_established(walk)
    stage1_codes = walk.codes_for(1)
    if scope is None:
        detail = facts.scope_problem or "no user is known for this device: name the user to check the join scope and quota"
        walk.note("eligibility", "unknown", detail, stage=1)
        if stage1_codes and not established:
            raise walk.finish(
                1,
                f"the device reports {stage1_codes[0].code}: the user is not authorized to join or register more devices",
                _first_step(stage1_codes, "Check the join scope and the user's device count."),
                "likely",
            )
        return
    data = scope.to_builtins()
    if walk.registered_only:
        walk.note("eligibility.scope", "not_applicable", "Entra registration: the Entra join scope does not apply", stage=1)
    else:
        walk.note("eligibility.scope", "pass" if scope.in_scope else "fail", scope.reasons[0], stage=1, scope=data)
    walk.note(
        "eligibility.quota",
        "fail" if scope.quota_reached else "pass",
        f"the user holds {scope.registered_devices} devices that count (hybrid excluded) against a quota of {scope.quota}",
        stage=1,
        registered_devices=scope.registered_devices,
        quota=scope.quota,
    )
    if established:
        if not scope.allowed:
            walk.note(
                "eligibility",
                "info",
                "the user could not join another device now; this device's existing join is unaffected",
                stage=1,
            )
        return
    if not scope.in_scope and not walk.registered_only:
        raise walk.finish(
            1,
            f"the user may not Entra-join devices: {scope.reasons[0]}",
            "Add the user (or a group they belong to) to 'Users may join devices to Microsoft Entra' (Entra admin center > "
            "Devices > Device settings), or have a user who is in scope join the device. Retrying the join will not help.",
            "confirmed",
        )
    if scope.quota_reached:
        stale = _quota_remediation(facts)
        names = ", ".join(d.display_name or d.id for d in stale[:10]) or "none found"
        raise walk.finish(
            1,
            f"the user holds {scope.registered_devices} devices against the quota of {scope.quota}: a new join is refused",
            f"Remove the user's stale devices ({len(stale)} found: {names}), disabling first and deleting after the grace "
            "period, or raise 'Maximum number of devices per user'. Retrying the join will not help until then.",
            "confirmed",
            remediation=stale,
        )


def _local_state(walk: _Walk) -> None:
    """The device's own view (dsregcmd): tenant, keys, and whether it believes it is joined."""
    local, facts = walk.local, walk.facts
    if local is None:
        walk.note("local.state", "unknown", "no dsregcmd /status output attached")
        return
    walk.note(
        "local.state",
        "info",
        f"the device reports join type {local.join_type}",
        join_type=local.join_type,
        AzureAdJoined=local.value("AzureAdJoined"),
        DomainJoined=local.value("DomainJoined"),
        WorkplaceJoined=local.value("WorkplaceJoined"),
        DeviceId=local.device_id,
        TenantId=local.tenant_id,
        TenantName=local.value("TenantName"),
        DeviceAuthStatus=local.device_auth_status,
        AzureAdPrt=local.value("AzureAdPrt"),
    )
    if facts.tenant_id and local.tenant_id and local.tenant_id != facts.tenant_id.lower():
        walk.note("local.tenant", "fail", f"the device is joined to tenant {local.tenant_id}, not {facts.tenant_id}", stage=3)
        raise walk.finish(
            3,
            f"the device is registered in another tenant ({local.value('TenantName') or local.tenant_id})",
            "Local and tenant state are mismatched: the registration belongs to another directory. If the device belongs "
            "here, run `dsregcmd /leave` from an elevated prompt and restart, then join this tenant (for hybrid devices "
            "first correct the tenant id in the service connection point).",
            "confirmed",
            rejoin=True,
        )
    recovery = local.flag("AadRecoveryEnabled")
    key_test = (local.value("KeySignTest") or "").upper()
    if recovery or key_test.startswith("FAIL"):
        walk.note("local.keys", "fail", "the device keys are not usable (AadRecoveryEnabled / KeySignTest)", stage=3)
        raise walk.finish(
            3,
            "the device's keys do not match its registration: the device is marked for recovery",
            "Have the user sign in again: the next sign-in runs the recovery flow and re-registers the device (silently for "
            "hybrid devices; Entra joined and registered devices prompt the user). No manual leave/rejoin is needed.",
            "confirmed",
        )


def _tenant_object(walk: _Walk) -> None:
    """The tenant's view: does an object exist, is it complete (not pending), enabled, and the same as local?"""
    device, local, facts = walk.device, walk.local, walk.facts
    if device is None:
        _no_tenant_object(walk)
        return
    pending = is_pending(device)
    walk.note(
        "tenant.object",
        "info",
        f"tenant object {device.display_name or device.id}: trustType {device.trust_type}, "
        f"{'enabled' if device.account_enabled else 'disabled' if device.account_enabled is False else 'enabled state unknown'}"
        f"{', pending (synced, no alternativeSecurityIds: registration never completed)' if pending else ''}",
        id=device.id,
        deviceId=device.device_id,
        trustType=device.trust_type,
        accountEnabled=device.account_enabled,
        registered=device.registration_date_time,
        lastSignIn=device.approximate_last_sign_in_date_time,
        pending=pending,
    )
    object_device_id = (device.device_id or "").lower() or None
    if local is not None and local.device_id and object_device_id and local.device_id != object_device_id:
        walk.note(
            "tenant.match",
            "fail",
            f"the device reports DeviceId {local.device_id}; the tenant object has {object_device_id}",
            stage=3,
        )
        raise walk.finish(
            3,
            "the device's DeviceId does not match the tenant object: local and tenant state are mismatched",
            "The device holds a registration the tenant no longer has. On the device run `dsregcmd /leave` from an elevated "
            "prompt and restart so it registers against the tenant again (hybrid: it re-registers at the next sign-in on the "
            "corporate network); then retire the leftover object.",
            "confirmed",
            rejoin=True,
        )
    if pending:
        _pending_object(walk, device)
    elif is_registration_unclear(device):
        walk.note(
            "tenant.registration",
            "info",
            "hybrid object with alternativeSecurityIds but no X509 key: not pending by Microsoft's definition; "
            "registration state unclear from the tenant side (compare with dsregcmd /status on the device)",
        )
    if device.account_enabled is False:
        tag = _our_tag(device, facts)
        by = f" by entra-janitor on {tag.at:%Y-%m-%d} ({tag.reason})" if tag else ""
        walk.note("tenant.enabled", "fail", f"the tenant object is disabled{by}", stage=3, tag=tag.render() if tag else None)
        where = "in on-premises AD (Entra Connect syncs it)" if walk.hybrid else "in the Entra admin center"
        raise walk.finish(
            3,
            f"the tenant object is disabled{by}; the device cannot authenticate (DeviceAuthStatus fails)",
            f"If the device is in use, re-enable the object {where}; it authenticates again without a rejoin. If it was "
            "retired, close the ticket.",
            "confirmed",
        )
    if local is not None and not local.azure_ad_joined and not (walk.registered_only and local.workplace_joined):
        walk.note("tenant.match", "fail", "the tenant has a complete object but the device says it is not joined", stage=3)
        raise walk.finish(
            3,
            "the tenant has a registered object for this device, but the device is not joined (it left, or was reimaged)",
            "Local and tenant state are mismatched: join the device again (Entra join: Settings > Accounts > Access work or "
            "school; hybrid: restart on the corporate network so it registers), then retire the old object.",
            "confirmed",
            rejoin=True,
        )
    status = (local.device_auth_status or "").upper() if local is not None else ""
    if "DISABLED" in status or "DELETED" in status:
        walk.note(
            "tenant.match", "info", "the device reported 'disabled or deleted' but the object is now enabled; re-check later"
        )


def _no_tenant_object(walk: _Walk) -> None:
    local, facts = walk.local, walk.facts
    joined = local is not None and bool(local.azure_ad_joined or local.workplace_joined)
    walk.note("tenant.object", "fail", f"the tenant has no device object matching {facts.device_ref!r}", stage=3 if joined else 4)
    if local is not None and joined:
        if walk.hybrid:
            step = (
                "Local and tenant state are mismatched: the object was deleted in Entra. Entra Connect re-creates it as "
                "Pending at the next sync; then run `dsregcmd /leave` on the device and restart so it registers again. "
                "If the computer is retired, remove it from AD or the sync scope instead."
            )
        else:
            step = (
                "Local and tenant state are mismatched: the object was deleted. Leave on the device (`dsregcmd /leave` "
                "elevated, or Settings > Accounts > Access work or school > Disconnect), restart, and join again; "
                "Autopilot devices need their Autopilot registration re-imported first."
            )
        raise walk.finish(
            3,
            f"the device believes it is joined (DeviceId {local.device_id}) but the tenant has no object for it",
            step,
            "confirmed",
            rejoin=True,
        )
    _connectivity(walk)  # an attempt that failed on the network explains the missing object best
    stage2 = [c for c in walk.codes if c.stage == 2]
    if local is not None and stage2:
        raise walk.finish(
            4,
            "the registration transaction did not complete: the Device Registration Service did not find the object yet",
            _first_step(stage2, "Let Entra Connect finish a sync cycle, then let the device retry."),
            "confirmed",
        )
    if walk.hybrid:
        step = (
            "No object was synced for this computer: check that it is in Entra Connect's sync scope and that its "
            "userCertificate attribute is set (the device writes it at its first attempt). After the next sync the object "
            "appears as Pending and the device completes registration at the next sign-in. "
            + (NEED_DSREGCMD if local is None else "")
        )
    else:
        step = (
            "The device never completed a join or registration, and nothing attached says why. " + NEED_DSREGCMD + " Do not "
            "retry the join blindly."
            + (" (If the device should exist, check the name, object id or deviceId in the ticket.)" if local is None else "")
        )
    raise walk.finish(
        4,
        "the tenant has no object for this device: the registration transaction never completed",
        step.strip(),
        "needs_evidence" if local is None else "likely",
    )


def _pending_object(walk: _Walk, device: Device) -> None:
    """Stage 2 (or 3/4 when local evidence says more) for a hybrid object without a registered certificate."""
    local = walk.local
    age = (walk.facts.now - device.registration_date_time).days if device.registration_date_time else None
    walk.note("tenant.pending", "fail", "hybrid object without a registered certificate (pending)", stage=2, age_days=age)
    if local is not None and local.azure_ad_joined:
        raise walk.finish(
            3,
            "the device says it completed hybrid join, but the tenant object is still pending (no certificate)",
            "Local and tenant state are mismatched (typically the object was deleted and re-synced): run `dsregcmd /leave` "
            "from an elevated prompt on the device and restart; it registers against the current object.",
            "confirmed",
            rejoin=True,
        )
    network = _network_evidence(walk)
    if network:
        walk.note("connectivity", "fail", "; ".join(network), stage=4)
        raise walk.finish(
            4,
            "the object is pending because the device's registration attempts fail on the way to the Device Registration Service",
            _first_step(
                walk.codes_for(4),
                "Give the device's SYSTEM context a working path to enterpriseregistration.windows.net "
                "and login.microsoftonline.com (proxy, firewall, DNS); it retries at the next sign-in.",
            ),
            "confirmed",
        )
    raise walk.finish(
        2,
        "the tenant object exists but registration never completed (pending hybrid object)",
        "On the device, signed in as a domain user with line of sight to a domain controller: run `dsregcmd /status`. If "
        "AzureAdJoined is NO, restart and sign in so the Automatic-Device-Join task completes registration; if it still does "
        "not complete, run `dsregcmd /leave` elevated and restart (registration is incomplete, so re-registering is safe). "
        "If the computer is retired, remove it from AD or the sync scope." + ("" if local is not None else " " + NEED_DSREGCMD),
        "confirmed" if local is not None else "likely",
        rejoin=True,
    )


def _connectivity(walk: _Walk) -> None:
    """Stage 4, only when the evidence points at the network/transaction and the join is not established."""
    if _join_established(walk):
        return
    network = _network_evidence(walk)
    if not network:
        walk.note("connectivity", "not_applicable", "no evidence points at connectivity", stage=4)
        return
    walk.note("connectivity", "fail", "; ".join(network), stage=4)
    raise walk.finish(
        4,
        "the registration transaction did not complete: " + network[0],
        _first_step(
            walk.codes_for(4),
            "Give the device's SYSTEM context a working path to enterpriseregistration.windows.net and "
            "login.microsoftonline.com (proxy, firewall, DNS); the device retries by itself afterwards.",
        ),
        "confirmed",
    )


def _downstream(walk: _Walk) -> None:
    """Stage 5 once the join is proven healthy: PRT, MDM enrollment, compliance. Otherwise healthy."""
    device, local, facts = walk.device, walk.local, walk.facts
    assert device is not None  # _tenant_object raised otherwise
    walk.note(
        "join",
        "pass",
        "the join is healthy: the tenant object is complete and enabled" + (" and matches the device" if local else ""),
    )
    prt_codes = (
        [c for c in walk.codes if c.stage == 5 and any(c.field in b.fields for b in local.prt_diagnostics)] if local else []
    )
    if local is not None and local.azure_ad_prt is False and not walk.registered_only:
        blocks = [dict(b.fields, kind=b.kind) for b in local.prt_diagnostics]
        walk.note("downstream.prt", "fail", "AzureAdPrt is NO: the user has no Primary Refresh Token", stage=5, attempts=blocks)
        raise walk.finish(
            5,
            "the join is healthy but the user has no Primary Refresh Token (SSO and device-based Conditional Access fail)",
            _first_step(
                prt_codes,
                "Lock and unlock the device (or sign out and in) to request a PRT, then re-run `dsregcmd "
                "/status` as the user; read Attempt Status and Server Error Code in its SSO State section.",
            ),
            "confirmed",
        )
    mdm_codes = [c for c in walk.codes if c.stage == 5 and c not in prt_codes]
    windows = (device.operating_system or "").lower().startswith("windows")
    if mdm_codes or (windows and device.trust_type == "AzureAd" and device.is_managed is False):
        walk.note("downstream.mdm", "fail", "the device is joined but not enrolled in MDM", stage=5, isManaged=device.is_managed)
        raise walk.finish(
            5,
            "the join is healthy but the device is not enrolled in MDM (Intune), so compliance cannot be evaluated",
            _first_step(
                mdm_codes,
                "Check automatic MDM enrollment: the MDM user scope must include the user, the user needs an "
                "Intune licence, and the enrollment restrictions must allow Windows (MDM).",
            ),
            "confirmed" if mdm_codes or local is not None else "likely",
        )
    if device.is_compliant is False:
        walk.note("downstream.compliance", "fail", "the device is marked non-compliant", stage=5, isCompliant=False)
        raise walk.finish(
            5,
            "the join is healthy but the device is not compliant: Conditional Access policies that require a compliant "
            "device block it",
            "Open the device in Intune and fix the failing compliance settings; the device re-evaluates at its next check-in.",
            "confirmed",
        )
    if facts.intune_known and facts.intune_last_sync is not None:
        walk.note("downstream.intune", "pass", "Intune record present", lastSync=facts.intune_last_sync)
    if local is not None and local.azure_ad_prt:
        walk.note("downstream.prt", "pass", "the user has a Primary Refresh Token", stage=5)
    raise walk.finish(
        "healthy",
        "no fault found: the device is joined, its tenant object is complete and enabled"
        + (", and the user has a PRT" if local is not None and local.azure_ad_prt else ""),
        "Nothing to fix in device registration. If the user still cannot sign in, look at the application or the "
        "Conditional Access sign-in logs."
        + ("" if local is not None else " For a full check, " + NEED_DSREGCMD[0].lower() + NEED_DSREGCMD[1:]),
        "confirmed" if local is not None else "likely",
    )


def _our_tag(device: Device, facts: Facts) -> tags.Tag | None:
    """entra-janitor's disable tag on the object, if we disabled it."""
    if device.extension_attributes is None:
        return None
    return tags.parse(device.extension_attributes.get(facts.policy.tag.attribute))
