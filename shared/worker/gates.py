"""The worker's gates: small named pure units, run in a fixed order, each returning pass or a reason.

A gate sees a `GateContext` (the command, the action so far, the device as Graph shows it now and the
facts the I/O layer looked up) and answers a `GateResult`: passed, or stopped with a terminal decision
(blocked, skipped, deferred, dry_run), or passed while narrowing the action (hybrid that sync carries ->
notify the on-prem owners; non-Windows -> tag). No gate performs I/O or reads the clock: `now` is in the
context. The budget gate (7) needs an atomic reservation first, so it is evaluated separately
(`budget_gate`). Every rule cites its Microsoft source beside the code; docs/safety.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.actions import DEVICE_WRITES, MAILS, READ_ONLY, Action
from shared.classify import ClassifyContext, protected
from shared.classify.model import as_utc
from shared.classify.registration import HYBRID_TRUST_TYPE, sync_carries
from shared.commands import RemediationCommand
from shared.jsonshape import is_object
from shared.models import Device
from shared.platforms import is_windows
from shared.policy import Policy
from shared.ports import DeletedDevice
from shared.tags import Tag, parse
from shared.undo import check as undo_check

#: What the platform gate narrows on non-Windows devices (app-only identities may not disable them).
DESTRUCTIVE = frozenset({Action.DISABLE, Action.DELETE})
#: The writes a recent Intune check-in blocks (clear_tag is not one: it only removes our own marker).
INTUNE_BLOCKS = frozenset({Action.TAG, Action.DISABLE, Action.DELETE})
_DELETE = frozenset({Action.DELETE})
#: Undo actions that put a device back (re-enable, restore): neither protection nor the hybrid narrowing holds them.
PUT_BACK = frozenset({Action.REENABLE, Action.RESTORE})
#: Triggers whose commands undo something entra-janitor did (their evidence names it under "undo").
UNDO_TRIGGERS = frozenset({"undo", "keep"})


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's answer. `stop` is the terminal decision when the gate ends the command here."""

    name: str
    passed: bool
    reason: str
    stop: str | None = None  # blocked | skipped | deferred | dry_run
    narrow_to: str | None = None

    def record(self) -> dict[str, Any]:
        """The `data.gates` entry of the audit record."""
        out: dict[str, Any] = {"name": self.name, "passed": self.passed, "reason": self.reason}
        if self.narrow_to:
            out["narrowed_to"] = self.narrow_to
        return out


@dataclass(frozen=True, slots=True)
class GateContext:
    """Everything the gates decide on. Built by the handler from Graph and the audit log."""

    command: RemediationCommand
    action: str
    policy: Policy
    now: datetime
    kill_switch: bool
    current: Device | None  # the device re-read from Graph now (None: gone)
    protected_ids: frozenset[str] = frozenset()  # object ids of devices in protect.groups
    bitlocker_key_ids: tuple[str, ...] | None = None  # None: not looked up
    laps_credential: bool | None = None  # a Windows LAPS password stored for the deviceId; None: not looked up
    intune_last_sync: datetime | None = None
    recreated_from: Mapping[str, Any] | None = None  # our earlier delete of the same on-prem SID
    deleted: DeletedDevice | None = None  # restore: the device in deleted items (None: not there, or not looked up)
    kept_until: datetime | None = None  # its owner kept it (keep link) until then; None: not kept, or not looked up
    extra: Mapping[str, Any] = field(default_factory=dict[str, Any])

    def tag_value(self) -> str | None:
        """The raw value of the tag attribute on the current device (ours, someone else's, or None)."""
        if self.current is None or self.current.extension_attributes is None:
            return None
        return self.current.extension_attributes.get(self.policy.tag.attribute)

    def tag(self) -> Tag | None:
        """Our tag on the current device, if any."""
        return parse(self.tag_value())


Gate = Callable[[GateContext], GateResult]


@dataclass(frozen=True, slots=True)
class GateSpec:
    """A registered gate: its name, the facts it reads and for which actions, and the function.

    `needs` are keys of shared.graph.permissions (the Graph reads that fetch its facts): the permissions a
    deployment needs follow from them and from the action table, nowhere else. `applies` are the actions the
    gate can stop or narrow (empty: every action); the worker fetches a gate's facts only for those.
    """

    name: str
    check: Gate
    doc: str
    needs: tuple[str, ...] = ()
    applies: frozenset[Action] = frozenset()

    def active_for(self, action: Action) -> bool:
        return not self.applies or action in self.applies


GATES: list[GateSpec] = []


def gate(name: str, *, needs: tuple[str, ...] = (), applies: frozenset[Action] = frozenset()) -> Callable[[Gate], Gate]:
    """Register a gate (order of registration = order of evaluation)."""

    def register(fn: Gate) -> Gate:
        GATES.append(GateSpec(name, fn, (fn.__doc__ or "").strip(), needs, applies))
        return fn

    return register


def facts_needed(action: Action) -> frozenset[str]:
    """The Graph reads (permission-table keys) the gates need for this action: nothing else is fetched."""
    return frozenset(key for spec in GATES if spec.active_for(action) for key in spec.needs)


def _ok(name: str, reason: str) -> GateResult:
    return GateResult(name, True, reason)


def _stop(name: str, decision: str, reason: str) -> GateResult:
    return GateResult(name, False, reason, stop=decision)


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.0f}"


# --------------------------------------------------------------------------- 1. kill switch
@gate("kill_switch")
def kill_switch(ctx: GateContext) -> GateResult:
    """JANITOR_KILL_SWITCH=true stops every remediation: blocked."""
    if ctx.kill_switch:
        return _stop("kill_switch", "blocked", "kill switch JANITOR_KILL_SWITCH is on: nothing is done until it is off")
    return _ok("kill_switch", "kill switch off")


# --------------------------------------------------------------------------- 2. state changed since the scan
def state_changes(before: Device, now: Device, tag_attribute: int) -> list[str]:
    """What changed on the device between the scan's snapshot and now, in words (empty: nothing relevant)."""
    changes: list[str] = []
    b_sign, n_sign = before.approximate_last_sign_in_date_time, now.approximate_last_sign_in_date_time
    if n_sign is not None and (b_sign is None or n_sign > b_sign):
        changes.append(f"signed in since the scan ({_iso(b_sign)} -> {_iso(n_sign)})")
    if before.account_enabled is False and now.account_enabled is True:
        changes.append("re-enabled since the scan")
    elif before.account_enabled is True and now.account_enabled is False:
        changes.append("disabled by someone else since the scan")
    if before.display_name != now.display_name:
        changes.append(f"renamed ({before.display_name!r} -> {now.display_name!r})")
    if before.trust_type != now.trust_type:
        changes.append(f"trust type changed ({before.trust_type} -> {now.trust_type})")
    if len(now.alternative_security_ids) != len(before.alternative_security_ids):
        changes.append("registration state changed (alternativeSecurityIds)")
    if set(now.physical_ids) != set(before.physical_ids):
        changes.append("physicalIds changed (e.g. Autopilot registration)")
    b_tag = before.extension_attributes.get(tag_attribute) if before.extension_attributes else None
    n_tag = now.extension_attributes.get(tag_attribute) if now.extension_attributes else None
    if b_tag != n_tag:
        changes.append(f"extensionAttribute{tag_attribute} changed")
    return changes


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "never"


@gate("state_unchanged", needs=("get_device",))
def state_unchanged(ctx: GateContext) -> GateResult:
    """Re-read the device now; deleted, signed in, re-enabled or renamed since the scan -> skipped."""
    name = "state_unchanged"
    if ctx.action in READ_ONLY:
        return _ok(name, "read-only action: the current state is what is reported")
    if ctx.action == Action.RESTORE:
        return _ok(name, "a restore needs the device gone: the undo gate checks deleted items")
    if ctx.current is None:
        return _stop(name, "skipped", "state changed: the device no longer exists")
    if ctx.command.snapshot is not None:
        changes = state_changes(ctx.command.snapshot, ctx.current, ctx.policy.tag.attribute)
        if changes:
            return _stop(name, "skipped", "state changed: " + "; ".join(changes))
        basis = "unchanged since the scan"
    else:
        basis = "no scan snapshot (ticket command): the current state is gated"
    tag = ctx.tag()
    if ctx.action == "disable" and ctx.current.account_enabled is False:
        return _stop(name, "skipped", "nothing to do: the device is already disabled")
    if ctx.action == "tag" and tag is not None:
        return _stop(name, "skipped", f"nothing to do: already tagged by entra-janitor on {_iso(tag.at)}")
    if ctx.action == "clear_tag" and tag is None:
        return _stop(name, "skipped", "nothing to do: no entra-janitor tag on the device")
    return _ok(name, basis)


# --------------------------------------------------------------------------- 2b. tag ownership
#: How much of a foreign attribute value a reason quotes (values may be up to 1024 characters).
QUOTE_LIMIT = 64


def quote_value(value: str, limit: int = QUOTE_LIMIT) -> str:
    """A foreign value, safe to show: cut to `limit` characters, then invisible or control characters escaped."""
    cut = value[:limit]
    shown = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in cut)
    more = f"... ({len(value)} characters)" if len(value) > limit else ""
    return f'"{shown}"{more}'


@gate("tag_ownership", needs=("get_device",), applies=DEVICE_WRITES)
def tag_ownership(ctx: GateContext) -> GateResult:
    """The tag attribute must be empty or hold our own tag before any device write: otherwise blocked.

    Source: Microsoft Learn, "Filter for devices" (Conditional Access) and "Dynamic membership rules for
    groups": device.extensionAttribute1-15 select devices for Conditional Access policies and dynamic device
    groups, so overwriting someone else's value can move a device in or out of a policy. No write at all
    (not even a disable, which would carry our tag) is made to such a device.
    """
    name = "tag_ownership"
    if ctx.action not in DEVICE_WRITES or ctx.current is None:
        return _ok(name, "no device write")
    attribute = f"extensionAttribute{ctx.policy.tag.attribute}"
    value = ctx.tag_value()
    if not value:
        return _ok(name, f"{attribute} is empty")
    if parse(value) is not None:
        return _ok(name, f"{attribute} holds an entra-janitor tag")
    return _stop(
        name,
        "blocked",
        f"{attribute} holds {quote_value(value)}, which is not an entra-janitor tag: no write to this device "
        "(Conditional Access device filters and dynamic device groups may use it; choose another tag.attribute "
        "or clear the value)",
    )


# --------------------------------------------------------------------------- 3. protection
@gate("protection", needs=("get_device", "group_devices"))
def protection(ctx: GateContext) -> GateResult:
    """Autopilot, protected name patterns and protected groups are re-checked now: blocked."""
    name = "protection"
    if ctx.action in READ_ONLY or ctx.current is None:
        return _ok(name, "nothing to protect from a read")
    if ctx.action in PUT_BACK:
        return _ok(name, f"{ctx.action} puts back what entra-janitor did: protection never holds it")
    evidence = protected(ctx.current, ClassifyContext(ctx.policy, ctx.now, ctx.protected_ids))
    if evidence:
        return _stop(name, "blocked", f"protected device: {_describe(evidence)}")
    return _ok(name, "not Autopilot, no protected name pattern, not in a protected group")


def _describe(evidence: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in evidence.items())


# --------------------------------------------------------------------------- 3a. kept by its owner
@gate("kept", applies=INTUNE_BLOCKS)  # reads the audit log (keep records), not Graph
def kept(ctx: GateContext) -> GateResult:
    """A device its owner kept with the keep link gets no tag, disable or delete until the keep ends: blocked.

    Source: issue 14 and Microsoft Learn, "Manage stale devices in Microsoft Entra ID" (a stale timestamp can
    be a user on leave). The scan already leaves kept devices alone (class kept); this holds a command that
    was queued before the owner answered.
    """
    name = "kept"
    until = ctx.kept_until
    if ctx.action not in INTUNE_BLOCKS or until is None or until <= ctx.now:
        return _ok(name, "not kept by its owner")
    return _stop(name, "blocked", f"kept by its owner until {until:%Y-%m-%d} (keep link): no tag, disable or delete until then")


# --------------------------------------------------------------------------- 3b. undo
def undone_run(command: RemediationCommand) -> str | None:
    """The run an undo command undoes (None: any run of ours, as a ticket or a keep link asks)."""
    undo = command.evidence.get("undo")
    run_id = undo.get("run_id") if is_object(undo) else None
    return run_id if isinstance(run_id, str) and run_id else None


def _is_undo(ctx: GateContext) -> bool:
    return ctx.action in PUT_BACK or (ctx.action == Action.CLEAR_TAG and ctx.command.trigger in UNDO_TRIGGERS)


@gate("undo_state", needs=("get_device",), applies=frozenset({Action.REENABLE, Action.CLEAR_TAG}))
def undo_state(ctx: GateContext) -> GateResult:
    """An undo puts back only what is still as entra-janitor left it: changed since -> skipped, with the reason.

    Re-enable: still disabled and still carrying the `disabled` tag of the run undone; un-tag: still that
    run's tag. Anyone who changed the device since decided something about it: where Microsoft is silent,
    the undo writes nothing (shared/undo/checks.py).
    """
    name = "undo_state"
    if not _is_undo(ctx):
        return _ok(name, "not an undo")
    return _verdict(name, ctx)


@gate("restorable", needs=("get_deleted_device",), applies=frozenset({Action.RESTORE}))
def restorable(ctx: GateContext) -> GateResult:
    """A restore needs the device gone and in deleted items, and the object that was deleted (same deviceId).

    Source: device soft delete (preview; Microsoft Learn, device docs dated 2026-04): Entra joined and registered
    devices stay in deleted items for 30 days (Graph beta directory/deletedItems); hybrid joined objects are
    deleted for good at once, so they are reported with the on-premises steps.
    """
    name = "restorable"
    if ctx.action != Action.RESTORE:
        return _ok(name, "not a restore")
    return _verdict(name, ctx)


def _verdict(name: str, ctx: GateContext) -> GateResult:
    verdict = undo_check(
        Action(ctx.action),
        current=ctx.current,
        run_id=undone_run(ctx.command),
        attribute=ctx.policy.tag.attribute,
        deleted=ctx.deleted,
        snapshot=ctx.command.snapshot,
    )
    if verdict.ok:
        return _ok(name, verdict.reason)
    return _stop(name, verdict.decision, verdict.reason)


# --------------------------------------------------------------------------- 4. hybrid
def _pending_delete_opt_in(ctx: GateContext) -> bool:
    return ctx.command.device_class == "pending" and ctx.action == "delete" and ctx.policy.pending.action == "delete"


def _why_sync_cannot_carry(device: Device) -> str:
    if device.on_premises_sync_enabled is None:
        return "never synced (onPremisesSyncEnabled is null)"
    if device.on_premises_sync_enabled is not True:
        return "no longer synced (onPremisesSyncEnabled is false)"
    return f"down-level Windows (operatingSystemVersion {device.operating_system_version})"


@gate("hybrid", needs=("get_device",), applies=DEVICE_WRITES)
def hybrid(ctx: GateContext) -> GateResult:
    """Hybrid joined (ServerAd) devices sync can carry get no Entra write: notify the on-prem owners instead.

    Source: Microsoft Learn, "Manage stale devices in Microsoft Entra ID": synced hybrid Windows 10+ devices
    are disabled or deleted in on-prem AD and sync carries the change; objects no longer synced and
    down-level (Windows 7/8.1, version 6.x) hybrid devices must be cleaned up in Entra directly, because sync
    never carries a change to them: those take the cloud path (disable + tag, delete after grace and gates).
    """
    name = "hybrid"
    dev = ctx.current
    if dev is None or dev.trust_type != HYBRID_TRUST_TYPE or ctx.action not in DEVICE_WRITES:
        return _ok(name, "not a hybrid device write")
    if ctx.action == "clear_tag":
        return _ok(name, "clear_tag only removes entra-janitor's own tag: done in Entra for hybrid objects too")
    if ctx.action in PUT_BACK:
        return _ok(name, f"{ctx.action} undoes entra-janitor's own Entra write: done in Entra, where it was made")
    if _pending_delete_opt_in(ctx):
        return _ok(name, "pending object (registration never completed) and pending.action is delete (opt-in)")
    if not sync_carries(dev):
        return _ok(
            name,
            f"hybrid object sync cannot change ({_why_sync_cannot_carry(dev)}): cleaned up in Entra directly "
            "(disable + tag, delete after the grace period and the delete gates)",
        )
    return GateResult(
        name,
        True,
        "hybrid joined (ServerAd): no Entra write; disable or delete the computer in on-prem AD and let sync carry it",
        narrow_to="notify_onprem",
    )


@gate("recreated_by_sync", applies=_DELETE)  # reads the audit log, not Graph
def recreated_by_sync(ctx: GateContext) -> GateResult:
    """A pending object we deleted before came back from sync (same on-prem SID): never delete it again."""
    name = "recreated_by_sync"
    if not _pending_delete_opt_in(ctx) or ctx.recreated_from is None:
        return _ok(name, "not a pending object re-created after our delete")
    when = ctx.recreated_from.get("at", "earlier")
    return GateResult(
        name,
        True,
        f"re-created by sync: fix on-prem (the same onPremisesSecurityIdentifier was deleted by entra-janitor {when}; "
        "remove the computer from AD or the sync scope, or run dsregcmd /leave and restart it)",
        narrow_to="notify_onprem",
    )


# --------------------------------------------------------------------------- 5. platform capability
@gate("platform", needs=("get_device",), applies=DESTRUCTIVE)
def platform(ctx: GateContext) -> GateResult:
    """App-only identities cannot disable non-Windows devices: tag and notify; delete only if the policy says."""
    name = "platform"
    dev = ctx.current
    if dev is None or ctx.action not in DESTRUCTIVE or is_windows(dev.operating_system) or _pending_delete_opt_in(ctx):
        return _ok(name, "Windows device, or no disable or delete")
    os_name = dev.operating_system or "unknown OS"
    tag = ctx.tag()
    allowed_delete = ctx.action == "delete" and ctx.policy.stale.non_windows_action == "delete" and tag is not None
    if tag is not None and not allowed_delete:
        return _stop(name, "skipped", f"nothing to do: {os_name} device already {tag.action} by entra-janitor on {_iso(tag.at)}")
    if ctx.action == "disable":
        return GateResult(name, True, f"app-only identities cannot disable {os_name} devices: tag and notify", narrow_to="tag")
    if ctx.policy.stale.non_windows_action != "delete":
        return GateResult(
            name, True, f"stale.non_windows_action is tag: {os_name} devices are tagged, not deleted", narrow_to="tag"
        )
    if tag is None:
        return GateResult(
            name,
            True,
            f"{os_name} devices cannot be disabled first: tagged now, deleted after the grace period",
            narrow_to="tag",
        )
    return _ok(name, f"{os_name} device tagged by entra-janitor on {_iso(tag.at)}; stale.non_windows_action is delete")


# --------------------------------------------------------------------------- 6. delete gates
@gate("bitlocker_keys", needs=("bitlocker_keys",), applies=_DELETE)
def bitlocker_keys(ctx: GateContext) -> GateResult:
    """Deleting a device loses its BitLocker recovery keys: blocked unless the policy allows it."""
    name = "bitlocker_keys"
    if ctx.action != "delete":
        return _ok(name, "not a delete")
    keys = ctx.bitlocker_key_ids
    if keys is None:
        return _stop(name, "blocked", "BitLocker keys were not looked up: a delete needs that check")
    if keys and not ctx.policy.gates.allow_delete_with_bitlocker_keys:
        return _stop(name, "blocked", f"{len(keys)} BitLocker recovery key(s) stored for this deviceId would be lost")
    if keys:
        return _ok(name, f"{len(keys)} BitLocker key(s), allowed by gates.allow_delete_with_bitlocker_keys")
    return _ok(name, "no BitLocker recovery keys stored")


@gate("laps_password", needs=("laps_credentials",), applies=_DELETE)
def laps_password(ctx: GateContext) -> GateResult:
    """Deleting a device deletes its Windows LAPS password: blocked unless gates.allow_delete_with_laps.

    Source: Microsoft Learn, "Windows LAPS with Microsoft Entra ID": the local administrator password is
    stored on the device object and is deleted with it (GET /directory/deviceLocalCredentials/{deviceId},
    404 = none).
    """
    name = "laps_password"
    if ctx.action != "delete":
        return _ok(name, "not a delete")
    present = ctx.laps_credential
    if present is None:
        return _stop(name, "blocked", "Windows LAPS credentials were not looked up: a delete needs that check")
    if present and not ctx.policy.gates.allow_delete_with_laps:
        return _stop(name, "blocked", "a Windows LAPS password is stored for this deviceId and would be lost with it")
    if present:
        return _ok(name, "Windows LAPS password stored, allowed by gates.allow_delete_with_laps")
    return _ok(name, "no Windows LAPS password stored")



@gate("intune_active", needs=("managed_devices",), applies=INTUNE_BLOCKS)
def intune_active(ctx: GateContext) -> GateResult:
    """An Intune check-in within gates.intune_active_days blocks tag, disable and delete: retire it in Intune first.

    Source: Microsoft Learn, "Manage stale devices in Microsoft Entra ID": MDM-managed devices are retired in
    the MDM first, then disabled, then deleted; Intune check-ins go on while the Entra timestamp lags, so a
    recent one is evidence the device is in use.
    """
    name = "intune_active"
    if ctx.action not in INTUNE_BLOCKS:
        return _ok(name, f"{ctx.action} is not a tag, disable or delete")
    last = ctx.intune_last_sync
    days = ctx.policy.gates.intune_active_days
    if last is not None and ctx.now - last < timedelta(days=days):
        return _stop(
            name,
            "blocked",
            f"the device checked in with Intune {_days(ctx.now - last)} days ago (within gates.intune_active_days "
            f"= {days}): retire it in Intune first",
        )
    return _ok(name, "no Intune record" if last is None else f"Intune record last synced {_days(ctx.now - last)} days ago")


@gate("grace_period", needs=("get_device",), applies=_DELETE)
def grace_period(ctx: GateContext) -> GateResult:
    """Deletes only after we disabled (or, non-Windows, tagged) it at least delete_after_disabled_days ago.

    Source: Microsoft Learn, "Manage stale devices in Microsoft Entra ID": disable first, delete after a
    grace period. The tag starts that period only when it is dated after the device's last sign-in: a
    device that signed in after our tag, or is enabled again, was in use since, so it is never deleted on
    that tag (the scan clears it: class reactivated).
    """
    name = "grace_period"
    if ctx.action != "delete":
        return _ok(name, "not a delete")
    if _pending_delete_opt_in(ctx):
        return _ok(name, "pending object never completed registration: deleted once (opt-in), no grace period")
    dev = ctx.current
    days = ctx.policy.stale.delete_after_disabled_days
    tag = ctx.tag()
    windows = dev is not None and is_windows(dev.operating_system)
    if tag is None:
        return _stop(name, "blocked", f"not disabled by entra-janitor: disable it first; deletes follow after {days} days")
    signed_in = as_utc(dev.approximate_last_sign_in_date_time) if dev and dev.approximate_last_sign_in_date_time else None
    if signed_in is not None and signed_in >= tag.at:
        return _stop(
            name,
            "blocked",
            f"signed in after the entra-janitor tag ({_iso(signed_in)} >= {_iso(tag.at)}): never deleted on that tag",
        )
    if windows and (dev is None or dev.account_enabled is not False):
        return _stop(name, "blocked", "the device is enabled again after entra-janitor disabled it: never deleted on that tag")
    if windows and tag.action != "disabled":
        return _stop(name, "blocked", f"tag says {tag.action!r}, not disabled: disable it first")
    age = ctx.now - tag.at
    if age < timedelta(days=days):
        return _stop(
            name,
            "blocked",
            f"{tag.action} by entra-janitor {_days(age)} days ago; deletes are allowed after {days} days",
        )
    return _ok(name, f"{tag.action} by entra-janitor {_days(age)} days ago (grace period {days} days passed)")


# --------------------------------------------------------------------------- 7. budget (evaluated by the handler)
@dataclass(frozen=True, slots=True)
class Reservation:
    """The budget store's answer: granted or not, and the counters after the attempt."""

    granted: bool
    run_used: int
    day_used: int
    per_run: int
    per_day: int
    scope: str = ""  # which limit refused: run | day


def budget_gate(action: str, reservation: Reservation | None) -> GateResult:
    """Device writes (tag, clear_tag, disable, delete) per run and per day, shared by every worker: deferred past the limit.

    Tags are writes too: they can move a device in or out of a Conditional Access filter (issue 11), so they
    spend the same budget (limits.max_destructive_per_run / _per_day). Mails spend none.
    """
    name = "budget"
    if action not in DEVICE_WRITES:
        return _ok(name, "not a device write: no budget needed")
    if reservation is None:
        return _stop(name, "deferred", "no budget reservation was made")
    if reservation.granted:
        return _ok(
            name,
            f"reserved: {reservation.run_used}/{reservation.per_run} this run, "
            f"{reservation.day_used}/{reservation.per_day} today",
        )
    if reservation.scope == "run":
        why = f"per-run budget of {reservation.per_run} device writes used up"
    else:
        why = f"daily budget of {reservation.per_day} device writes used up"
    return _stop(name, "deferred", f"{why}: deferred; the next nightly scan proposes it again")


# --------------------------------------------------------------------------- 8. mode
def mode_gate(action: str, policy: Policy) -> GateResult:
    """`mode: report` never writes: the full decision is recorded as dry_run."""
    name = "mode"
    if action in READ_ONLY:
        return _ok(name, "read-only action runs in every mode")
    if policy.mode != "enforce":
        return _stop(name, "dry_run", f"mode is report: would {action}; nothing written")
    return _ok(name, "mode is enforce")


# --------------------------------------------------------------------------- evaluation
@dataclass(frozen=True, slots=True)
class Evaluation:
    """Where gates 1-6 left the command: the (possibly narrowed) action, every result, and a stop if any."""

    action: str
    results: tuple[GateResult, ...]
    stop: GateResult | None

    def records(self) -> list[dict[str, Any]]:
        return [r.record() for r in self.results]


def evaluate(ctx: GateContext) -> Evaluation:
    """Run the registered gates in order; a stop ends the walk, a narrowing changes the action for the rest."""
    results: list[GateResult] = []
    action = ctx.action
    for spec in GATES:
        result = spec.check(replace(ctx, action=action) if action != ctx.action else ctx)
        results.append(result)
        if result.narrow_to:
            action = result.narrow_to
        if result.stop:
            return Evaluation(action, tuple(results), result)
    if action == "report":
        stop = _stop("report_only", "skipped", f"report only: class {ctx.command.device_class!r} is never remediated")
        return Evaluation(action, (*results, stop), stop)
    return Evaluation(action, tuple(results), None)


def finish(evaluation: Evaluation, reservation: Reservation | None, policy: Policy) -> Evaluation:
    """Gates 7 (budget) and 8 (mode) after gates 1-6 passed."""
    results = list(evaluation.results)
    for result in (budget_gate(evaluation.action, reservation), mode_gate(evaluation.action, policy)):
        results.append(result)
        if result.stop:
            return Evaluation(evaluation.action, tuple(results), result)
    return Evaluation(evaluation.action, tuple(results), None)


def needs_budget(action: str) -> bool:
    """Every device write reserves budget; mails and reads do not."""
    return action in DEVICE_WRITES


def sends_mail(action: str) -> bool:
    return action in MAILS
