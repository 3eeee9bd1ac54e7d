"""The worker's pure decision core: what to do with one command, and what came of it. No I/O, no clock.

The shell (handler.py) reads, reserves, writes and records; everything it decides on comes from here:

- `decide(facts, policy, now) -> Stop | Act`: the gates (gates.py) and the plan (the action table's calls).
- `admit(act, reservation, policy) -> Stop | Act`: the budget and mode gates, after the shell reserved
  budget for a device write (the reservation is I/O, so it sits between `decide` and `admit`).
- `notice(...)`, `hold_mail(...)`: who is told, and whether a mail-only action can be done at all.
- `interpret(act, results) -> Outcome`: Graph's answer (and the mail's) to a decision.
- `reconcile(...)`, `from_outcome(...)`, `give_up(...)`: a redelivery's earlier progress, and errors.

Every action's behaviour is read from the one action table (shared/actions.py); every Graph failure's
class from the gateway's one classification (shared/graph/failures.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import msgspec

from shared.actions import ACTIONS, Action, Call, Kind, applied, parse_action, patch_body, plan_calls
from shared.commands import RemediationCommand
from shared.errors import GraphError, GraphNotFound, JanitorError
from shared.graph.failures import is_non_windows_refusal, result_error
from shared.jsonshape import is_array, is_object
from shared.models import Device
from shared.notify import Notice, recipients, render_notice
from shared.notify.messages import KeepOffer
from shared.policy import Policy
from shared.ports import AuditRecord, DeletedDevice, GraphResult, GroupRef, Owner
from shared.worker import records
from shared.worker.gates import GATES, Evaluation, GateContext, GateResult, Reservation, evaluate, finish

#: The gate that reads the audit log (not Graph) for an earlier delete of the same on-prem SID.
RECREATED_GATE = "recreated_by_sync"
#: The gate that reads the audit log for the owner's keep of the device.
KEPT_GATE = "kept"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Facts:
    """What the shell read for one command: only what the gates active for the planned action declare they need."""

    command: RemediationCommand
    action: Action  # the planned action: the ticket's request, or the proposal capped by the class table
    plan_reason: str
    current: Device | None  # the device re-read now (None: gone)
    kill_switch: bool = False
    protected_ids: frozenset[str] = frozenset()
    bitlocker_key_ids: tuple[str, ...] | None = None  # None: not looked up
    laps_credential: bool | None = None  # None: not looked up
    intune_last_sync: datetime | None = None
    recreated_from: Mapping[str, Any] | None = None
    deleted: DeletedDevice | None = None  # restore: the device in deleted items (None: not there, or not looked up)
    kept_until: datetime | None = None  # its owner kept it until then (keep link); None: not kept or not looked up
    mail_sender: str | None = None
    digest: bool = False


@dataclass(frozen=True, slots=True)
class Act:
    """Gates passed: the action to take, every gate walked, and the device calls it makes."""

    facts: Facts
    action: Action
    results: tuple[GateResult, ...]
    calls: tuple[Call, ...]  # the device write (PATCH/DELETE), none for mail and read-only actions

    @property
    def command(self) -> RemediationCommand:
        return self.facts.command

    @property
    def gates(self) -> list[dict[str, Any]]:
        """`data.gates` of the records: the plan first, then every gate walked."""
        plan = GateResult("plan", True, self.facts.plan_reason)
        return [plan.record(), *(r.record() for r in self.results)]

    @property
    def narrowed(self) -> list[str]:
        return [r.reason for r in self.results if r.narrow_to]

    @property
    def kind(self) -> Kind:
        return ACTIONS[self.action].kind


@dataclass(frozen=True, slots=True)
class Stop:
    """A terminal decision: made by a gate, by an error, or by Graph's answer to an action (`Outcome`)."""

    decision: str  # acted | dry_run | skipped | blocked | deferred | failed
    action: str
    reason: str
    gates: Sequence[Mapping[str, Any]] = ()
    data: Mapping[str, Any] = field(default_factory=dict[str, Any])
    act: Act | None = None  # the action a dry run stands for (its notice is previewed)

    @property
    def settle(self) -> str:
        """A failed command's message is dead-lettered; every other decision completes it."""
        return "dead_letter" if self.decision == "failed" else "complete"


@dataclass(frozen=True, slots=True)
class Outcome(Stop):
    """What came of an action: the decision, the `outcome` record's data, and whether to try again later."""

    record: Mapping[str, Any] | None = None  # the outcome record (writes and mails); None for read-only actions
    retry: GraphError | None = None  # a transient write failure: the shell raises it, the message is retried
    writes: int = 0  # device writes sent to Graph
    mail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Results:
    """What the shell's calls answered: the device write, the mail, and read-only actions' reads."""

    write: GraphResult | None = None
    mail: Mapping[str, Any] | None = None
    user: str | None = None  # scope_check: whose join scope was checked
    scope: Mapping[str, Any] | None = None  # scope_check: the ScopeResult as data
    diagnosis: Mapping[str, Any] | None = None  # diagnose: the Diagnosis as data


# --------------------------------------------------------------------------- deciding


def gate_active(name: str, action: Action) -> bool:
    """Is the named gate active for this action (then its facts are read)?"""
    return any(spec.name == name and spec.active_for(action) for spec in GATES)


def decide(facts: Facts, policy: Policy, now: datetime) -> Stop | Act:
    """The gates 1-6 in order over the facts; a stop ends the walk, a narrowing changes the action for the rest."""
    evaluation = evaluate(_context(facts, policy, now))
    action = Action(evaluation.action)
    if evaluation.stop is not None:
        return _stopped(facts, action, evaluation.results, evaluation.stop)
    return Act(facts, action, evaluation.results, _device_calls(facts, action, policy, now))


def needs_reservation(act: Act) -> bool:
    """Every device write (tag, clear_tag, disable, delete) spends budget; mails and reads do not."""
    return ACTIONS[act.action].writes


def admit(act: Act, reservation: Reservation | None, policy: Policy) -> Stop | Act:
    """Gates 7 (budget) and 8 (mode) after gates 1-6 passed: deferred past the budget, dry_run in report mode."""
    done = finish(Evaluation(act.action.value, act.results, None), reservation, policy)
    admitted = replace(act, results=done.results)
    if done.stop is None:
        return admitted
    stop = _stopped(act.facts, act.action, done.results, done.stop)
    if done.stop.stop != "dry_run":
        return stop
    data = {**stop.data, "planned": planned(admitted)}
    return replace(stop, data=data, act=admitted)


def _context(facts: Facts, policy: Policy, now: datetime) -> GateContext:
    return GateContext(
        command=facts.command,
        action=facts.action.value,
        policy=policy,
        now=now,
        kill_switch=facts.kill_switch,
        current=facts.current,
        protected_ids=facts.protected_ids,
        bitlocker_key_ids=facts.bitlocker_key_ids,
        laps_credential=facts.laps_credential,
        intune_last_sync=facts.intune_last_sync,
        recreated_from=facts.recreated_from,
        deleted=facts.deleted,
        kept_until=facts.kept_until,
    )


def _stopped(facts: Facts, action: Action, results: tuple[GateResult, ...], stop: GateResult) -> Stop:
    plan = GateResult("plan", True, facts.plan_reason)
    return Stop(
        stop.stop or "blocked",
        action.value,
        stop.reason,
        gates=[plan.record(), *(r.record() for r in results)],
        data={"current": records.snapshot(facts.current), "final_action": action.value},
    )


def _device_calls(facts: Facts, action: Action, policy: Policy, now: datetime) -> tuple[Call, ...]:
    if not ACTIONS[action].writes:
        return ()
    command = facts.command
    body = None
    if action is not Action.DELETE:
        body = patch_body(action, policy.tag.attribute, now, command.device_class, command.run_id)
    return plan_calls(action, command.device_object_id, body)


def planned(act: Act) -> list[dict[str, Any]]:
    """The calls the intent (or the dry run) records: the device write, then the notice when one is sent."""
    calls: list[dict[str, Any]] = [call.record() for call in act.calls]
    if ACTIONS[act.action].mails_owners:
        sender = act.facts.mail_sender or "<MAIL_SENDER>"
        calls.append({"method": "POST", "url": f"/users/{sender}/sendMail", "digest": act.facts.digest})
    return calls


# --------------------------------------------------------------------------- telling people


def reads_owners(act: Act, policy: Policy) -> bool:
    """Are the device's registered owners read (the action mails, the policy mails owners, the device exists)?"""
    return ACTIONS[act.action].mails_owners and policy.notify.owners and act.facts.current is not None


#: Actions whose notice offers the owner the keep link (what a keep undoes or prevents: a disable, a tag).
KEEP_LINK_ACTIONS = frozenset({Action.DISABLE, Action.TAG})


def keep_owner(act: Act, owners: Sequence[Owner]) -> Owner | None:
    """The owner a keep link is made for: the first registered owner with an address, for a disable or a tag."""
    if act.action not in KEEP_LINK_ACTIONS or act.facts.current is None:
        return None
    return next((o for o in owners if o.mail or o.user_principal_name), None)


def notice(
    act: Act,
    owners: Sequence[Owner],
    policy: Policy,
    now: datetime,
    *,
    dry_run: bool = False,
    keep: KeepOffer | None = None,
) -> Notice | None:
    """The notice an action sends (None: it sends none, or there is nobody to send it to).

    The undo it offers follows the device's trust type; a stale device with an Intune record gets "retire it
    in Intune first" (shared/notify/messages.py reads `intune_last_sync` from the evidence).
    """
    if not ACTIONS[act.action].mails_owners:
        return None
    to = recipients(owners, policy.notify.admins, include_owners=policy.notify.owners)
    if not to:
        return None
    command, current = act.command, act.facts.current
    last = act.results[-1].reason if act.results else ""
    evidence = dict(command.evidence)
    if act.facts.intune_last_sync is not None:
        evidence["intune_last_sync"] = act.facts.intune_last_sync.isoformat()
    return render_notice(
        to=to,
        action=act.action.value,
        device_class=command.device_class,
        display_name=(current.display_name if current else None) or command.display_name,
        object_id=command.device_object_id,
        reason="; ".join(act.narrowed or [last]),
        evidence=evidence,
        tag_attribute=policy.tag.attribute,
        now=now,
        dry_run=dry_run,
        trust_type=current.trust_type if current else None,
        keep=keep,
    )


def hold_mail(act: Act, notice: Notice | None, mail_sender: str | None) -> Stop | None:
    """A mail-only action with nobody to tell, or no mailbox to send from, is skipped before its intent."""
    if act.kind is not Kind.MAIL:
        return None
    if notice is None:
        why = "no recipients: no registered owner with mail and notify.admins is empty"
    elif not mail_sender:
        why = "MAIL_SENDER is not set: nothing can be sent"
    else:
        return None
    return Stop("skipped", act.action.value, why, act.gates, {"current": records.snapshot(act.facts.current)})


# --------------------------------------------------------------------------- what came of it


def interpret(act: Act, results: Results) -> Outcome:
    """The decision Graph's answers make: acted, skipped (gone before the write), failed, or try again later.

    Called once after the device write and again after the mail (a mail goes out only when the write worked).
    """
    if act.kind is Kind.READ:
        return _read_outcome(act, results)
    decision, reason = "acted", _acted_reason(act)
    retry: GraphError | None = None
    write = results.write
    error = result_error(write) if write is not None else None
    if write is not None and error is not None:
        decision, reason, retry = _write_failed(act, write, error)
    if decision == "acted" and act.kind is Kind.MAIL and results.mail is not None and _mail_failed(results.mail):
        decision, reason = "failed", f"sendMail failed: {results.mail.get('error')}"
    record = _outcome_record(act, results, decision)
    return Outcome(
        decision,
        act.action.value,
        reason,
        gates=act.gates,
        data={"request_id": write.request_id if write else None},
        record=record,
        retry=retry,
        writes=1 if write is not None else 0,
        mail=results.mail,
    )


def _write_failed(act: Act, write: GraphResult, error: GraphError) -> tuple[str, str, GraphError | None]:
    """(decision, reason, retry) for a write Graph did not do."""
    if error.transient:
        again = type(error)(
            f"Graph write for {act.command.device_object_id} did not go through: {error.message}",
            status=error.status,
            code=error.code,
            request_id=error.request_id,
        )
        return "failed", again.message, again
    if isinstance(error, GraphNotFound):
        if act.action is Action.DELETE:
            return "acted", "the device was already gone (404): done", None
        if act.action is Action.RESTORE:
            return "skipped", "not in deleted items any more (404): restored by someone else, or gone for good", None
        return "skipped", "state changed: the device was deleted before the write", None
    return "failed", refusal(act.action, write), None


def _mail_failed(mail: Mapping[str, Any]) -> bool:
    status = mail.get("status", 202)
    return isinstance(status, int) and (status == 0 or status >= 400)


def refusal(action: Action, result: GraphResult) -> str:
    """Why a write failed for good; the gateway's message says what can help (never a permission that would not).

    Source: Microsoft Graph answers an application's accountEnabled PATCH on a non-Windows device with
    400 Request_BadRequest, "Properties other than ExtendedAttribute1..15 can be modified only on windows
    devices" (microsoft-graph-docs issues 15707 and 16641): no permission or role changes that.
    """
    said = result.error_message or result.error_code or str(result.status)
    if is_non_windows_refusal(result.status, result.error_code, result.error_message):
        return (
            f"Graph refused the {action.value} for good (400 {result.error_code}; no permission or role changes this): "
            f"{said}"
        )
    return f"Graph refused the {action.value}: {said}"


def _acted_reason(act: Act) -> str:
    narrowed = act.narrowed
    return ACTIONS[act.action].done + (f" ({'; '.join(narrowed)})" if narrowed else "")


def _outcome_record(act: Act, results: Results, decision: str) -> dict[str, Any]:
    write = results.write
    before = act.facts.current
    worked = write is not None and result_error(write) is None
    after: Device | None = before
    if act.action is Action.DELETE:
        after = None
    elif act.action is Action.RESTORE:
        after = restored(write) if worked and write is not None else None
    elif worked and act.calls and act.calls[0].body is not None and before is not None:
        after = after_patch(before, act.calls[0].body)
    extra: dict[str, Any] = {}
    if act.action is Action.RESTORE and act.facts.deleted is not None:
        extra["deleted_item"] = records.snapshot(act.facts.deleted.device)
    undoes = undo_reference(act.command)
    if undoes is not None:
        extra["undoes"] = undoes
    return {
        **extra,
        "status": write.status if write else None,
        "request_id": write.request_id if write else None,
        "error": write.error_message if write else None,
        "before": records.snapshot(before),
        "after": records.snapshot(after),
        "mail": dict(results.mail) if results.mail is not None else None,
        "done": decision == "acted",
        "decision": decision,
    }


def after_restore(outcome: Outcome, act: Act, groups_now: Sequence[GroupRef]) -> Outcome:
    """A restore checked against the delete's snapshot: the groups it was in then and is not in now are named.

    Microsoft does not say whether a restored device keeps its group memberships (device soft delete is a
    preview): the outcome says which to add back rather than assume either way.
    """
    undo = act.command.evidence.get("undo")
    before = undo.get("groups") if is_object(undo) else None
    listed: list[Any] = before if is_array(before) else []
    expected = {str(g.get("id")): g.get("displayName") for g in listed if is_object(g)}
    now_ids = {g.id for g in groups_now}
    missing = [{"id": gid, "displayName": name} for gid, name in expected.items() if gid not in now_ids]
    record = {**(outcome.record or {}), "groups_after": [g.id for g in groups_now], "groups_missing": missing}
    reason = outcome.reason
    if missing:
        names = ", ".join(str(m["displayName"] or m["id"]) for m in missing[:10])
        reason += f"; not back in {len(missing)} group(s) it was in before the delete: {names} (add it back)"
    elif expected:
        reason += f"; member again of the {len(expected)} group(s) it was in before the delete"
    return replace(outcome, reason=reason, record=record)


def restored(write: GraphResult) -> Device | None:
    """The device a restore brought back, as Graph's answer describes it (None when the answer has no object)."""
    if write.body is None:
        return None
    try:
        return msgspec.convert(dict(write.body), Device)
    except msgspec.ValidationError:
        return None


def undo_reference(command: RemediationCommand) -> dict[str, Any] | None:
    """What an undo command undoes (the decision record, command and run), for its intent, outcome and decision."""
    undo = command.evidence.get("undo")
    if not is_object(undo):
        return None
    keys = ("run_id", "command_id", "record_id", "action")
    return {key: undo.get(key) for key in keys}


def after_patch(device: Device, body: Mapping[str, Any]) -> Device:
    """The device as a PATCH Graph accepted leaves it, for the outcome record (no extra read).

    Source: Graph docs, "Update device": properties left out of the body keep their values, and
    extensionAttributes is merged attribute by attribute (a null clears one).
    """
    data: dict[str, Any] = msgspec.to_builtins(device)
    for key, value in body.items():
        if key == "extensionAttributes" and isinstance(value, Mapping):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    return msgspec.convert(data, Device)


def _read_outcome(act: Act, results: Results) -> Outcome:
    action, gates = act.action.value, act.gates
    if act.action is Action.SCOPE_CHECK:
        if results.user is None or results.scope is None:
            why = "no user to check: the ticket names none and the device has no registered owner"
            return Outcome("skipped", action, why, gates=gates)
        verdict = "allowed" if results.scope.get("allowed") else "not allowed"
        reasons = "; ".join(str(r) for r in results.scope.get("reasons") or ())
        reason = f"Entra join {verdict} for {results.user}: {reasons}"
        return Outcome("acted", action, reason, gates=gates, data={"scope": dict(results.scope)})
    if act.action is Action.DIAGNOSE and results.diagnosis is not None:
        stage = results.diagnosis.get("stage")
        return Outcome("acted", action, f"diagnosed: stage {stage}", gates=gates, data={"diagnosis": dict(results.diagnosis)})
    return Outcome("skipped", action, "report only", gates=gates)


# --------------------------------------------------------------------------- redeliveries and errors


def reconcile(command: RemediationCommand, intent: AuditRecord, current: Device | None, policy: Policy) -> Outcome | None:
    """An intent without an outcome (a crash between the write and its record): done already, or None.

    Done (the action table's `applied` on the device re-read now): the outcome is recorded as reconciled
    and nothing is written again. Not done: None, and the command is gated and attempted afresh. Mail is
    never re-sent (at most once).
    """
    action = parse_action(intent.entry.action)
    if action is None or not applied(action, current, policy.tag.attribute, command.run_id):
        return None
    reason = "already applied before a restart: reconciled without writing again"
    planned_calls: list[Any] = intent.entry.data.get("planned") or []
    record: dict[str, Any] = {
        "status": None,
        "request_id": None,
        "reconciled": True,
        "done": True,
        "decision": "acted",
        "before": intent.entry.data.get("before"),
        "after": records.snapshot(current),
        "planned": planned_calls,
    }
    return Outcome(
        "acted",
        action.value,
        reason,
        gates=intent.entry.data.get("gates") or [],
        data={"reconciled": True, "intent_record": intent.record_id},
        record=record,
    )


def from_outcome(command: RemediationCommand, outcome: AuditRecord) -> Stop:
    """Crash after the outcome, before the decision: the decision follows from the outcome (no new write)."""
    decision = str(outcome.entry.data.get("decision", "acted"))
    return Stop(
        decision,
        outcome.entry.action or command.proposed_action,
        f"{outcome.entry.reason} (outcome recorded by an earlier delivery)",
        data={"outcome_record": outcome.record_id, "redelivered": True},
    )


def give_up(command: RemediationCommand, error: BaseException, delivery_count: int, max_deliveries: int) -> Stop | None:
    """None: give the message back for a later delivery; else the command's terminal `failed` decision.

    The error's class decides (shared/errors.py): a transient one is retried until the last delivery, which
    records `failed` once; a permanent one is `failed` at once. An error of no known class (a bug) is retried
    like a transient one, so the last delivery still ends in exactly one decision.
    """
    transient = error.transient if isinstance(error, JanitorError) else True
    if transient and delivery_count < max_deliveries:
        return None
    said = str(error) if isinstance(error, JanitorError) else f"{type(error).__name__}: {error}"
    reason = f"gave up after {delivery_count} deliveries: {said}" if transient else said
    return Stop("failed", command.proposed_action, reason, data={"error": type(error).__name__})
