"""The keep link's behaviour, free of azure.functions: a token in, a status and a page out.

GET reads only (the token, the device, its owners, an earlier keep) and shows the page: mail scanners and
link previews open links, so nothing a GET does changes anything or is recorded. POST acts: it records the
keep (kind `keep`: who, until when, which link) and, when entra-janitor disabled the device and it still
exists, queues a re-enable that the worker carries out through the same gates as any write (the undo
check: still disabled, still carrying that run's tag). A link that grants nothing (malformed, tampered, for
another device or owner, expired, an owner no longer registered on the device) gets a plain 4xx page, and
a POST with one leaves exactly one record: the refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared import commands, tags
from shared.actions import Action
from shared.commands import RemediationCommand
from shared.errors import TransientError
from shared.keep.page import Fact, confirm_page, kept_page, refusal_page
from shared.keep.records import earlier_keep, keep_entry, kept_until, refusal_entry
from shared.keep.token import KeepToken, KeepTokenRefused, read_token
from shared.models import Device
from shared.policy import Policy, policy_hash
from shared.ports import AuditLog, GraphPort, OutgoingMessage, Owner, QueueSender
from shared.undo.service import decision_undone

_WHY = {
    "stale": "it had not signed in for longer than the stale threshold",
    "duplicate": "a newer registration of the same hardware exists",
    "expired_disabled": "it stayed disabled past the grace period",
}


@dataclass(frozen=True, slots=True)
class KeepAnswer:
    status: int
    html: str


class Refused(Exception):
    """A keep that is not allowed, with the status and the sentence the page shows."""

    def __init__(self, status: int, why: str, message: str) -> None:
        super().__init__(why)
        self.status, self.why, self.message = status, why, message


_MESSAGES = {
    "malformed": "The link is incomplete or was changed. Open it from the notice again, exactly as it was sent.",
    "tampered": "The link was changed or belongs to another device. Open it from the notice again.",
    "expired": "The link has expired. Ask your administrator if you still need the device.",
}


@dataclass(frozen=True, slots=True)
class _Checked:
    token: KeepToken
    device: Device
    owner: Owner


class KeepService:
    """Serves /api/keep/{token}; the ports are passed in (tests: fakes or the simulator; Azure: bootstrap)."""

    def __init__(
        self,
        *,
        secret: bytes | None,
        audit: AuditLog,
        graph: GraphPort,
        sender: QueueSender,
        policy: Policy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.secret, self.audit, self.graph, self.sender, self.policy, self.clock = secret, audit, graph, sender, policy, clock

    # ------------------------------------------------------------------ GET

    async def view(self, token: str) -> KeepAnswer:
        """The page for a link; reads only, records nothing."""
        now = self.clock()
        try:
            checked = await self._check(token, now)
        except Refused as exc:
            return KeepAnswer(exc.status, refusal_page(exc.status, exc.message))
        earlier = await earlier_keep(self.audit, checked.token, now, self.policy.keep.link_days)
        name = _name(checked.device)
        if earlier is not None:
            until = kept_until(earlier) or self._until(now)
            return KeepAnswer(200, kept_page(name, until, bool(earlier.entry.data.get("requeued")), already=True))
        return KeepAnswer(200, confirm_page(name, _facts(checked.device, self.policy), self._until(now)))

    # ------------------------------------------------------------------ POST

    async def keep(self, token: str) -> KeepAnswer:
        """Record the keep and queue a re-enable when entra-janitor disabled the device; refusals are recorded."""
        now = self.clock()
        try:
            checked = await self._check(token, now)
        except Refused as exc:
            await self.audit.append(refusal_entry(token, exc.why, exc.status))
            return KeepAnswer(exc.status, refusal_page(exc.status, exc.message))
        earlier = await earlier_keep(self.audit, checked.token, now, self.policy.keep.link_days)
        if earlier is not None:  # the same link again: nothing new is recorded; a re-enable not yet done is re-sent
            until = kept_until(earlier) or self._until(now)
            command = await self._reenable(checked, now) if earlier.entry.data.get("requeued") else None
        else:
            until = self._until(now)
            command = await self._reenable(checked, now)
            requeued = {"command_id": command.command_id, "action": command.proposed_action} if command else None
            owner = checked.owner.user_principal_name or checked.owner.id
            await self.audit.append(keep_entry(checked.token, checked.device, owner, until, requeued))
        if command is not None:
            await self._send(command)  # again on a repeat: the same message id, and the worker acts once
        return KeepAnswer(200, kept_page(_name(checked.device), until, command is not None, already=earlier is not None))

    # ------------------------------------------------------------------ helpers

    def _until(self, now: datetime) -> datetime:
        return (now + timedelta(days=self.policy.keep.days)).replace(microsecond=0)

    async def _check(self, token: str, now: datetime) -> _Checked:
        if self.secret is None:
            raise Refused(404, "keep links are not enabled", "Keep links are not enabled here.")
        try:
            granted = read_token(self.secret, token, now)
        except KeepTokenRefused as exc:
            raise Refused(exc.status, exc.why, _MESSAGES[exc.why]) from None
        device = await self.graph.get_device(granted.device_object_id)
        if device is None:
            raise Refused(
                404, "device gone", "The device no longer exists in Entra ID. Ask your administrator: a deleted device "
                "can sometimes be restored.",
            )  # fmt: skip
        owners = await self.graph.registered_owners(device.id)
        owner = next((o for o in owners if o.id.lower() == granted.owner_id.lower()), None)
        if owner is None:
            raise Refused(403, "not an owner", "You are no longer a registered owner of this device.")
        return _Checked(granted, device, owner)

    async def _reenable(self, checked: _Checked, now: datetime) -> RemediationCommand | None:
        """The re-enable to queue when entra-janitor disabled the device (its `disabled` tag, still disabled)."""
        device = checked.device
        attributes = device.extension_attributes
        tag = tags.parse(attributes.get(self.policy.tag.attribute) if attributes else None)
        if tag is None or tag.action != "disabled" or device.account_enabled is not False:
            return None
        undoes = await decision_undone(self.audit, device.id, tag.run_id, "disable")
        owner = checked.owner.user_principal_name or checked.owner.id
        return RemediationCommand(
            command_id=commands.message_id("keep", device.id, checked.token.digest),
            run_id=f"keep-{now:%Y-%m-%d}",
            trigger="keep",
            device_object_id=device.id,
            device_id=device.device_id,
            display_name=device.display_name,
            device_class="keep",
            proposed_action=Action.REENABLE.value,
            evidence={"undo": undoes, "requested_by": owner, "keep": {"link": checked.token.digest}},
            policy_hash=policy_hash(self.policy),
            created_at=now,
        )

    async def _send(self, command: RemediationCommand) -> None:
        message = OutgoingMessage(message_id=command.command_id, body=commands.encode(command), subject="keep")
        try:
            await self.sender.send([message])
        except Exception as exc:
            raise TransientError(f"the keep was recorded but the re-enable could not be queued: {exc}") from exc


def _name(device: Device) -> str:
    return device.display_name or device.id


def _facts(device: Device, policy: Policy) -> list[Fact]:
    """What happened and why, from the device as it is now (our tag says when and for which class)."""
    attributes = device.extension_attributes
    tag = tags.parse(attributes.get(policy.tag.attribute) if attributes else None)
    facts = [Fact("Device", _name(device))]
    if device.operating_system:
        facts.append(Fact("System", device.operating_system))
    if tag is not None and tag.action == "disabled" and device.account_enabled is False:
        facts.append(Fact("What happened", f"disabled by entra-janitor on {tag.at:%d %B %Y}"))
    elif tag is not None:
        facts.append(Fact("What happened", f"marked by entra-janitor on {tag.at:%d %B %Y}; it still works"))
    else:
        facts.append(Fact("What happened", "nothing is pending against it right now"))
    if tag is not None:
        facts.append(Fact("Why", _WHY.get(tag.reason, f"class {tag.reason}")))
    signed_in = device.approximate_last_sign_in_date_time
    facts.append(Fact("Last sign-in", f"{signed_in:%d %B %Y}" if signed_in else "never recorded"))
    return facts
