"""A small in-memory GraphPort for the worker's unit tests (the end-to-end tests use the simulator)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from shared.commands import RemediationCommand, message_id
from shared.errors import GraphThrottled
from shared.graph.failures import failure_message
from shared.graph.wire import ErrorDetail
from shared.models import Device, ExtensionAttributes
from shared.policy import Policy, policy_from_data
from shared.ports import DeletedDevice, GraphResult, GroupRef, Owner
from shared.tags import Tag
from shared.worker.gates import GateContext

NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
#: Real Graph's answer to an app-only accountEnabled PATCH on a non-Windows device (microsoft-graph-docs 15707).
NON_WINDOWS_PATCH = "Properties other than ExtendedAttribute1..15 can be modified only on windows devices."


def device(object_id: str = "dev-1", **fields: Any) -> Device:
    base: dict[str, Any] = {
        "id": object_id,
        "deviceId": f"did-{object_id}",
        "displayName": f"PC-{object_id}",
        "accountEnabled": True,
        "approximateLastSignInDateTime": (NOW - timedelta(days=200)).isoformat(),
        "trustType": "AzureAd",
        "operatingSystem": "Windows",
        "alternativeSecurityIds": [{"type": 2, "key": "eA=="}],
    }
    base.update(fields)
    return msgspec.convert(base, Device)


def tagged(object_id: str, days_ago: int, action: str = "disabled", **fields: Any) -> Device:
    """A device entra-janitor disabled (or tagged) `days_ago` days before NOW, last signed in 200 days before NOW."""
    tag = Tag(action, NOW - timedelta(days=days_ago), "stale", "run-0").render()
    fields.setdefault("accountEnabled", action != "disabled")
    return device(object_id, extensionAttributes={"extensionAttribute15": tag}, **fields)


def command(dev: Device, *, device_class: str = "stale", action: str = "disable", **kw: Any) -> RemediationCommand:
    run_id = kw.pop("run_id", "run-1")
    return RemediationCommand(
        command_id=kw.pop("command_id", message_id(run_id, dev.id)),
        run_id=run_id,
        trigger=kw.pop("trigger", "nightly"),
        device_object_id=dev.id,
        device_id=dev.device_id,
        display_name=dev.display_name,
        device_class=device_class,
        proposed_action=action,
        evidence=kw.pop("evidence", {"days_since_sign_in": 200}),
        snapshot=kw.pop("snapshot", dev),
        policy_hash="test",
        created_at=NOW,
        **kw,
    )


def _refused(status: int, code: str, message: str, path: str) -> GraphResult:
    """A failed write as the gateway reports it (same wording as its own failure messages)."""
    detail = ErrorDetail(code=code, message=message)
    return GraphResult(status, "req-refused", error_code=code, error_message=failure_message(status, detail, "PATCH", path))


def _patched(dev: Device, body: Mapping[str, Any]) -> Device:
    """The fake's own model of a device PATCH: the named extension attributes and accountEnabled are set, and a
    property it does not model is a test bug (KeyError). Tests read the result from `FakeGraph.devices`."""
    unknown = set(body) - {"accountEnabled", "extensionAttributes"}
    if unknown:
        raise KeyError(f"the fake does not model PATCH of {sorted(unknown)}")
    ext = dev.extension_attributes or ExtensionAttributes()
    for name, value in (body.get("extensionAttributes") or {}).items():
        ext = msgspec.structs.replace(ext, **{"extension_attribute" + name.removeprefix("extensionAttribute"): value})
    enabled = body.get("accountEnabled", dev.account_enabled)
    return msgspec.structs.replace(dev, extension_attributes=ext, account_enabled=enabled)


def gate_context(dev: Device | None, action: str = "disable", policy: Policy | None = None, **kw: Any) -> GateContext:
    """The gates' input for a pure test: `dev` is both the scan's snapshot and the device as read now."""
    cmd = kw.pop("cmd", None)
    if cmd is None:
        assert dev is not None, "pass cmd= when the device is gone"
        cmd = command(dev, action=action)
    return GateContext(command=cmd, action=action, policy=policy or policy_from_data({"mode": "enforce"}), now=NOW,
                       kill_switch=kw.pop("kill", False), current=kw.pop("current", dev), **kw)


class FakeGraph:
    """Devices in a dict; every write and mail is recorded; knobs to fail."""

    def __init__(self, *devices: Device) -> None:
        self.devices: dict[str, Device] = {d.id: d for d in devices}
        self.owners: dict[str, list[Owner]] = {}
        self.keys: dict[str, list[str]] = {}
        self.laps: set[str] = set()  # deviceIds with a Windows LAPS password stored
        self.lookups: list[tuple[str, str]] = []  # (fact, deviceId) the worker read for its gates
        self.intune: dict[str, datetime] = {}
        self.groups: dict[str, set[str]] = {}
        self.writes: list[tuple[str, str, Mapping[str, Any] | None]] = []
        self.mails: list[tuple[str, list[str], str, str]] = []
        self.write_status: int | None = None  # force a status for every write
        self.reads = 0
        self.policy: dict[str, Any] = {}
        self.users: dict[str, Owner] = {}
        self.member_of: dict[str, set[str]] = {}
        self.user_devices: dict[str, list[Device]] = {}
        self.throttle_reads = False
        self.deleted: dict[str, DeletedDevice] = {}  # deleted items (device soft delete)
        self.device_member_of: dict[str, set[str]] = {}  # device object id -> ids of the groups it is in

    async def get_device(self, object_id: str) -> Device | None:
        self.reads += 1
        if self.throttle_reads:
            raise GraphThrottled("throttled", status=429)
        return self.devices.get(object_id)

    async def update_devices(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[GraphResult]:
        out = []
        for object_id, body in changes:
            self.writes.append(("PATCH", object_id, body))
            if self.write_status is not None:
                out.append(GraphResult(self.write_status, "req-x", error_message="forced"))
                continue
            dev = self.devices.get(object_id)
            if dev is None:
                out.append(GraphResult(404, "req-404"))
                continue
            if "accountEnabled" in body and not (dev.operating_system or "").lower().startswith("windows"):
                out.append(_refused(400, "Request_BadRequest", NON_WINDOWS_PATCH, f"/devices/{object_id}"))
                continue
            self.devices[object_id] = _patched(dev, body)
            out.append(GraphResult(204, f"req-{len(self.writes)}"))
        return out

    async def delete_devices(self, object_ids: Sequence[str]) -> list[GraphResult]:
        out = []
        for object_id in object_ids:
            self.writes.append(("DELETE", object_id, None))
            if self.write_status is not None:
                out.append(GraphResult(self.write_status, "req-x", error_message="forced"))
            elif (gone := self.devices.pop(object_id, None)) is None:
                out.append(GraphResult(404, "req-404"))
            else:
                if gone.trust_type != "ServerAd":  # device soft delete: cloud objects go to deleted items
                    self.deleted[object_id] = DeletedDevice(gone, NOW)
                out.append(GraphResult(204, f"req-{len(self.writes)}"))
        return out

    async def device_groups(self, object_id: str) -> list[GroupRef]:
        return [GroupRef(gid, f"group {gid}") for gid in sorted(self.device_member_of.get(object_id, set()))]

    async def deleted_device(self, object_id: str) -> DeletedDevice | None:
        self.lookups.append(("deleted", object_id))
        return self.deleted.get(object_id)

    async def restore_deleted_device(self, object_id: str) -> GraphResult:
        self.writes.append(("POST", object_id, None))
        if self.write_status is not None:
            return GraphResult(self.write_status, "req-x", error_message="forced")
        found = self.deleted.pop(object_id, None)
        if found is None:
            return GraphResult(404, "req-404", error_code="Request_ResourceNotFound")
        self.devices[object_id] = msgspec.structs.replace(found.device, is_compliant=False)
        return GraphResult(200, f"req-{len(self.writes)}", body=msgspec.to_builtins(self.devices[object_id]))

    async def registered_owners(self, object_id: str) -> list[Owner]:
        return list(self.owners.get(object_id, []))

    async def group_device_ids(self, group_id: str) -> set[str]:
        return set(self.groups.get(group_id, set()))

    async def bitlocker_key_ids(self, device_id: str) -> list[str]:
        self.lookups.append(("bitlocker", device_id))
        return list(self.keys.get(device_id, []))

    async def laps_credential_present(self, device_id: str) -> bool:
        self.lookups.append(("laps", device_id))
        return device_id in self.laps

    async def managed_device_last_sync(self, device_id: str) -> datetime | None:
        self.lookups.append(("intune", device_id))
        return self.intune.get(device_id)

    async def find_devices(self, name_or_id: str) -> list[Device]:
        key = name_or_id.lower()
        return [d for d in self.devices.values() if key in (d.id.lower(), (d.device_id or "").lower(),
                                                             (d.display_name or "").lower())]

    async def send_mail(self, sender: str, to: Sequence[str], subject: str, body_html: str) -> GraphResult:
        self.mails.append((sender, list(to), subject, body_html))
        return GraphResult(202, "mail-req")

    async def get_user(self, user: str) -> Owner | None:
        return self.users.get(user) or next((u for u in self.users.values() if u.user_principal_name == user), None)

    async def check_member_groups(self, user_id: str, group_ids: Sequence[str]) -> set[str]:
        assert len(group_ids) <= 20
        return set(group_ids) & self.member_of.get(user_id, set())

    async def device_registration_policy(self) -> Mapping[str, Any]:
        return self.policy

    async def user_registered_devices(self, user_id: str) -> list[Device]:
        return list(self.user_devices.get(user_id, []))

    async def close(self) -> None:
        return None
