"""Graph's JSON shapes on the wire, decoded with msgspec (no kiota models: those cost ~3 ms per object).

Decoders are built once here and reused; unknown fields (e.g. `@odata.context`) are skipped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from shared.jsonshape import is_dict
from shared.models import Device


class Page[T](msgspec.Struct, gc=False):
    """One page of a Graph collection."""

    value: list[T] = []
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")
    count: int | None = msgspec.field(default=None, name="@odata.count")


class ObjectId(msgspec.Struct, frozen=True, gc=False):
    id: str


class NextLink(msgspec.Struct, frozen=True, gc=False):
    """Only the paging link of a page (the values are skipped, not decoded)."""

    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")


class ObjectType(msgspec.Struct, frozen=True, gc=False):
    """The OData type of a directory object (collections such as registeredDevices mix types)."""

    odata_type: str | None = msgspec.field(default=None, name="@odata.type")


class UserWire(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """A directory object read as a user (owners may also be service principals: the user fields stay None)."""

    id: str
    display_name: str | None = None
    user_principal_name: str | None = None
    mail: str | None = None


class ManagedDeviceWire(msgspec.Struct, frozen=True, rename="camel", gc=False):
    id: str
    last_sync_date_time: datetime | None = None


class DeviceFilterWire(msgspec.Struct, frozen=True, gc=False):
    mode: str | None = None  # include | exclude
    rule: str | None = None  # e.g. device.extensionAttribute15 -eq "kiosk"


class DevicesConditionWire(msgspec.Struct, frozen=True, rename="camel", gc=False):
    device_filter: DeviceFilterWire | None = None


class ConditionsWire(msgspec.Struct, frozen=True, gc=False):
    devices: DevicesConditionWire | None = None


class ConditionalAccessPolicyWire(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """A Conditional Access policy, read only as far as its device filter."""

    id: str
    display_name: str | None = None
    state: str | None = None  # enabled | disabled | enabledForReportingButNotEnforced
    conditions: ConditionsWire | None = None

    @property
    def device_filter(self) -> DeviceFilterWire | None:
        devices = self.conditions.devices if self.conditions else None
        return devices.device_filter if devices else None


class GroupNameWire(msgspec.Struct, frozen=True, rename="camel", gc=False):
    id: str
    display_name: str | None = None


class GroupRuleWire(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """A group with its dynamic membership rule (None for assigned groups)."""

    id: str
    display_name: str | None = None
    group_types: list[str] = []
    membership_rule: str | None = None


class InnerError(msgspec.Struct, frozen=True):
    request_id: str | None = msgspec.field(default=None, name="request-id")
    date: str | None = None


class ErrorDetail(msgspec.Struct, frozen=True):
    code: str | None = None
    message: str | None = None
    inner_error: InnerError | None = msgspec.field(default=None, name="innerError")


class ErrorBody(msgspec.Struct, frozen=True):
    """Graph's error shape: {"error": {"code", "message", "innerError": {"request-id", "date"}}}."""

    error: ErrorDetail = ErrorDetail()


class BatchRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    method: str
    url: str  # relative to the API version, e.g. /devices/<id>
    headers: dict[str, str] = {}
    body: Any = None


class BatchEnvelope(msgspec.Struct, frozen=True):
    requests: list[BatchRequest]


class BatchResponse(msgspec.Struct, frozen=True):
    id: str
    status: int
    headers: dict[str, str] | None = None
    body: Any = None


class BatchReply(msgspec.Struct, frozen=True):
    responses: list[BatchResponse] = []


DEVICE_TYPE = "#microsoft.graph.device"
DEVICE_PAGE = msgspec.json.Decoder(Page[Device])
ID_PAGE = msgspec.json.Decoder(Page[ObjectId])
TYPE_PAGE = msgspec.json.Decoder(Page[ObjectType])
NEXT_LINK = msgspec.json.Decoder(NextLink)
USER_PAGE = msgspec.json.Decoder(Page[UserWire])
MANAGED_DEVICE_PAGE = msgspec.json.Decoder(Page[ManagedDeviceWire])
CA_POLICY_PAGE = msgspec.json.Decoder(Page[ConditionalAccessPolicyWire])
GROUP_RULE_PAGE = msgspec.json.Decoder(Page[GroupRuleWire])
GROUP_NAME_PAGE = msgspec.json.Decoder(Page[GroupNameWire])
STRING_LIST = msgspec.json.Decoder(Page[str])
DEVICE = msgspec.json.Decoder(Device)
USER = msgspec.json.Decoder(UserWire)
BATCH_REPLY = msgspec.json.Decoder(BatchReply)
ANY = msgspec.json.Decoder()
ENCODER = msgspec.json.Encoder()


def decode_error(body: bytes) -> ErrorDetail:
    """Graph's error detail, or an empty one when the body is not Graph-shaped (a gateway page, say)."""
    if not body:
        return ErrorDetail()
    try:
        return msgspec.json.decode(body, type=ErrorBody).error
    except msgspec.DecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return ErrorDetail(message=text or None)


def error_from_inner(body: Any) -> ErrorDetail:
    """The error detail of a $batch inner response (its body is already decoded JSON)."""
    if is_dict(body):
        try:
            return msgspec.convert(body, ErrorBody).error
        except msgspec.ValidationError:
            pass
    return ErrorDetail(message=str(body)[:200] if body else None)
