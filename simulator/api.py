"""The Graph v1.0 endpoints the simulator serves (registered into the pipeline's route table).

Devices: list (paged, $filter/$select/$count/$orderby/$search), $count, get/patch/delete by id or by
deviceId, registeredOwners. Directory: users, a user's registeredDevices, checkMemberGroups, sendMail,
groups and their (transitive) members, the device registration policy, the organization. Elsewhere:
BitLocker recovery keys, Intune managed devices, Windows LAPS credential metadata, Conditional Access
policies, dynamic groups, and `$batch`.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import msgspec

from simulator import odata, timefmt
from simulator.auth import USER_DETAILS, Caller
from simulator.devicestore import (
    EXT_FIELD,
    EXT_KEYS,
    OTHER_FIELDS,
    DeviceStore,
    canonical_field,
    plan_selection,
)
from simulator.directory import USER_DEFAULT_FIELDS, USER_EXTRA_FIELDS, Group
from simulator.pipeline import route
from simulator.tenant import WriteRecord
from simulator.wire import GraphHTTPError, GraphRequest, GraphResponse, json_response, not_found, split_url

if TYPE_CHECKING:
    from simulator.pipeline import Pipeline

_encode = msgspec.json.encode
MAX_BATCH = 20
MAX_CHECK_GROUPS = 20

# =========================================================================== helpers


def _next_link(ctx: Pipeline, path: str, params: Mapping[str, str], token: str) -> str:
    query = urlencode({**params, "$skiptoken": token}, quote_via=quote, safe="$'(),:/")
    return f"{ctx.base_url}{path}?{query}"


def _page(
    ctx: Pipeline, context: str, records: Sequence[bytes] | bytes, count: int | None, next_link: str | None
) -> GraphResponse:
    """A collection page; `records` is a list of JSON objects or an already joined array body."""
    head = b'{"@odata.context":' + _encode(f"{ctx.base_url}/$metadata#{context}")
    if count is not None:
        head += b',"@odata.count":' + str(count).encode()
    if next_link is not None:
        head += b',"@odata.nextLink":' + _encode(next_link)
    body = records if isinstance(records, bytes) else b",".join(records)
    return GraphResponse(200, b"".join((head, b',"value":[', body, b"]}")))


def _select_only(req: GraphRequest, field_name: Any) -> tuple[str, ...] | None:
    """$select of a single-object request (other options are refused)."""
    for option in req.query:
        if option.startswith("$") and option.lower() != "$select":
            raise GraphHTTPError(400, "BadRequest", f"Query option '{option}' is not supported on a single object.")
    text = req.query.get("$select")
    if not text:
        return None
    names = []
    for raw in text.split(","):
        name = field_name(raw)
        if name is None:
            raise GraphHTTPError(400, "BadRequest", f"Could not find a property named '{raw.strip()}' on this type.")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _device(ctx: Pipeline, id: str | None = None, device_id: str | None = None) -> int:
    store = ctx.tenant.devices
    if id is not None:
        index = store.find(id)
        key = id
    else:
        assert device_id is not None
        index = store.find_by_device_id(device_id)
        key = f"deviceId='{device_id}'"
    if index is None:
        raise not_found(key)
    return index


def _iter_matches(store: DeviceStore, q: odata.ListQuery, start: int) -> Iterable[int]:
    """Device indexes matching the query's filter, from `start` on, in store order, live ones only."""
    deleted = store.deleted
    if q.filter is None:
        if not store.deleted_count:
            return range(start, len(store))
        return (i for i in range(start, len(store)) if not deleted[i])
    predicate = odata.compile_filter(q.filter, store)
    found = odata.candidates(q.filter, store)
    source: Iterable[int] = range(start, len(store))
    if found is not None:  # ascending: a later page starts where the previous one stopped
        source = itertools.islice(found, bisect.bisect_left(found, start), None)
    return (i for i in source if not deleted[i] and predicate(i))


def _ordered(ctx: Pipeline, store: DeviceStore, q: odata.ListQuery) -> list[int]:
    """All matches, sorted / searched (cached per query and store version)."""
    key = ("order", q.signature(), store.version)
    cached = ctx.cache.get(key)
    if cached is None:
        matches = list(_iter_matches(store, q, 0))
        if q.search:
            names = store.names
            matches = [i for i in matches if q.search in names[i].lower()]
        if q.orderby:
            names = store.names
            matches.sort(key=lambda i: names[i].lower(), reverse=q.orderby[1])
        ctx.cache = {k: v for k, v in ctx.cache.items() if k[0] != "order"}
        ctx.cache[key] = cached = matches
    return cached


def _count(ctx: Pipeline, store: DeviceStore, q: odata.ListQuery) -> int:
    """@odata.count: computed once per query and store version (eventually consistent, like Graph)."""
    key = ("count", q.signature())
    cached = ctx.cache.get(key)
    if cached is not None and cached[0] == store.version:
        return cached[1]
    if q.filter is None and not q.search:
        value = store.live_count
    elif q.search or q.orderby:
        value = len(_ordered(ctx, store, q))
    else:
        value = sum(1 for _ in _iter_matches(store, q, 0))
    ctx.cache[key] = (store.version, value)
    return value


def _device_page(ctx: Pipeline, store: DeviceStore, q: odata.ListQuery) -> tuple[list[int], int | None]:
    """One page of indexes and the position of the next page (None when this is the last)."""
    if q.search or q.orderby:
        ordered = _ordered(ctx, store, q)
        page = ordered[q.position : q.position + q.top]
        end = q.position + len(page)
        return page, end if end < len(ordered) else None
    if q.filter is None and not store.deleted_count:
        end = min(q.position + q.top, len(store))
        return list(range(q.position, end)), end if end < len(store) else None
    page: list[int] = []
    for i in _iter_matches(store, q, q.position):
        if len(page) == q.top:
            return page, i  # the next page starts at the next match
        page.append(i)
    return page, None


# =========================================================================== devices


@route("GET", "/devices/$count", "devices.read")
def count_devices(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    if req.header("consistencylevel") != "eventual":
        raise GraphHTTPError(400, "Request_BadRequest", "/$count needs the header 'ConsistencyLevel: eventual'.")
    query = {k: v for k, v in req.query.items() if k.lower() == "$filter"}
    q = odata.parse_list_query({**query, "$count": "true"}, req.headers)
    with ctx.tenant.lock:
        value = _count(ctx, ctx.tenant.devices, q)
    return GraphResponse(200, str(value).encode(), content_type="text/plain;charset=utf-8")


@route("GET", "/devices", "devices.read")
def list_devices(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    q = odata.parse_list_query(req.query, req.headers)
    store = ctx.tenant.devices
    with ctx.tenant.lock:
        page, next_position = _device_page(ctx, store, q)
        records = store.render_array(page, plan_selection(q.select))
        count = _count(ctx, store, q) if q.count else None
    ctx.stats.devices_served += len(page)
    context = "devices" + (f"({','.join(q.select)})" if q.select else "")
    link = None
    if next_position is not None:
        link = _next_link(ctx, "/devices", q.params, odata.encode_skiptoken(next_position, q.signature()))
    return _page(ctx, context, records, count, link)


def _get_device(ctx: Pipeline, req: GraphRequest, index: int) -> GraphResponse:
    select = _select_only(req, canonical_field)
    record = ctx.tenant.devices.render([index], plan_selection(select))[0]
    context = _encode(f"{ctx.base_url}/$metadata#devices/$entity")
    return GraphResponse(200, b'{"@odata.context":' + context + (b"," + record[1:] if len(record) > 2 else b"}"))


@route("GET", "/devices/{id}", "devices.read")
def get_device(ctx: Pipeline, req: GraphRequest, id: str) -> GraphResponse:
    return _get_device(ctx, req, _device(ctx, id=id))


@route("GET", "/devices(deviceId='{device_id}')", "devices.read")
def get_device_by_device_id(ctx: Pipeline, req: GraphRequest, device_id: str) -> GraphResponse:
    return _get_device(ctx, req, _device(ctx, device_id=device_id))


def _validate_patch(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not body:
        raise GraphHTTPError(400, "Request_BadRequest", "A device PATCH body must be a non-empty JSON object.")
    unknown = sorted(set(body) - {"accountEnabled", EXT_FIELD})
    if unknown:
        raise GraphHTTPError(
            400,
            "Request_BadRequest",
            f"The simulator accepts only accountEnabled and extensionAttributes in a device PATCH; got {unknown}.",
        )
    if "accountEnabled" in body and not isinstance(body["accountEnabled"], bool):
        raise GraphHTTPError(400, "Request_BadRequest", "accountEnabled must be true or false.")
    ext = body.get(EXT_FIELD)
    if EXT_FIELD in body:
        if not isinstance(ext, dict) or not ext:
            raise GraphHTTPError(400, "Request_BadRequest", "extensionAttributes must be a non-empty object.")
        lower = {k.lower(): k for k in EXT_KEYS}
        clean = {}
        for key, value in ext.items():
            if key.lower() not in lower:
                raise GraphHTTPError(
                    400, "Request_BadRequest", f"Unknown extension attribute '{key}'; use extensionAttribute1..15."
                )
            if value is not None and (not isinstance(value, str) or len(value) > 1024):
                raise GraphHTTPError(400, "Request_BadRequest", f"{key} must be a string of at most 1024 characters or null.")
            clean[lower[key.lower()]] = value
        body = {**body, EXT_FIELD: clean}
    return body


def _write(ctx: Pipeline, req: GraphRequest, index: int | None, key: str, action: Any) -> GraphResponse:
    """Run a device write and record the attempt (refused ones too) in tenant.write_attempts / writes."""
    tenant = ctx.tenant
    object_id = tenant.devices.object_id(index) if index is not None else key
    body = None
    try:
        if index is None:
            raise not_found(key)
        body = action()
        status, code = 204, None
    except GraphHTTPError as exc:
        status, code = exc.status, exc.code
        raise
    finally:
        if req.method == "PATCH" and body is None:
            try:
                body = msgspec.json.decode(req.body) if req.body else None
            except msgspec.DecodeError:
                body = None
        tenant.record_write(
            WriteRecord(req.method, object_id, body, datetime.now(UTC), status, req.request_id, req.caller.app, code)
        )
    ctx.stats.writes += 1
    return GraphResponse(204)


#: Graph's answer to an app-only PATCH of anything but extensionAttributes on a device whose operatingSystem
#: is not Windows, whatever the app's permissions and roles (microsoft-graph-docs issues 15707 and 16641).
NON_WINDOWS_MESSAGE = "Properties other than ExtendedAttribute1..15 can be modified only on windows devices."


def _refuse_non_windows(body: Any, fields: Mapping[str, Any], caller: Caller) -> None:
    """App-only callers may change only extensionAttributes of a non-Windows device (deleting it works)."""
    if not isinstance(body, dict) or not caller.app_only:
        return
    if str(fields["operatingSystem"] or "").lower().startswith("windows"):
        return
    if set(body) - {EXT_FIELD}:
        raise GraphHTTPError(400, "Request_BadRequest", NON_WINDOWS_MESSAGE)


def _patch(ctx: Pipeline, req: GraphRequest, index: int | None, key: str) -> GraphResponse:
    def action() -> dict[str, Any]:
        assert index is not None
        fields = ctx.tenant.devices.profile_fields(index)
        raw = req.json()
        _refuse_non_windows(raw, fields, req.caller)
        body = _validate_patch(raw)
        if "accountEnabled" in body and fields["onPremisesSyncEnabled"]:
            raise GraphHTTPError(
                400,
                "Request_BadRequest",
                "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects "
                "currently undergoing migration.",
            )
        ctx.tenant.patch_device(index, body)
        return body

    return _write(ctx, req, index, key, action)


def _delete(ctx: Pipeline, req: GraphRequest, index: int | None, key: str) -> GraphResponse:
    def action() -> None:
        assert index is not None
        ctx.tenant.remove_device(index)

    return _write(ctx, req, index, key, action)


def _lookup(ctx: Pipeline, id: str | None = None, device_id: str | None = None) -> tuple[int | None, str]:
    store = ctx.tenant.devices
    if id is not None:
        return store.find(id), id
    assert device_id is not None
    return store.find_by_device_id(device_id), f"deviceId='{device_id}'"


@route("PATCH", "/devices/{id}", "devices.write", writes=1)
def patch_device(ctx: Pipeline, req: GraphRequest, id: str) -> GraphResponse:
    return _patch(ctx, req, *_lookup(ctx, id=id))


@route("PATCH", "/devices(deviceId='{device_id}')", "devices.write", writes=1)
def patch_device_by_device_id(ctx: Pipeline, req: GraphRequest, device_id: str) -> GraphResponse:
    return _patch(ctx, req, *_lookup(ctx, device_id=device_id))


@route("DELETE", "/devices/{id}", "devices.write", writes=1)
def delete_device(ctx: Pipeline, req: GraphRequest, id: str) -> GraphResponse:
    return _delete(ctx, req, *_lookup(ctx, id=id))


@route("DELETE", "/devices(deviceId='{device_id}')", "devices.write", writes=1)
def delete_device_by_device_id(ctx: Pipeline, req: GraphRequest, device_id: str) -> GraphResponse:
    return _delete(ctx, req, *_lookup(ctx, device_id=device_id))


def _owners(ctx: Pipeline, req: GraphRequest, index: int) -> GraphResponse:
    tenant = ctx.tenant
    owner = tenant.owner_of(tenant.devices.object_id(index))
    detailed = req.caller.holds_any(USER_DETAILS)
    value = []
    if owner is not None:
        value.append({"@odata.type": "#microsoft.graph.user", **(owner.to_graph() if detailed else {"id": owner.id})})
    return json_response({"@odata.context": f"{ctx.base_url}/$metadata#directoryObjects", "value": value})


@route("GET", "/devices/{id}/registeredOwners", "devices.read")
def registered_owners(ctx: Pipeline, req: GraphRequest, id: str) -> GraphResponse:
    return _owners(ctx, req, _device(ctx, id=id))


@route("GET", "/devices(deviceId='{device_id}')/registeredOwners", "devices.read")
def registered_owners_by_device_id(ctx: Pipeline, req: GraphRequest, device_id: str) -> GraphResponse:
    return _owners(ctx, req, _device(ctx, device_id=device_id))


def _member_of(ctx: Pipeline, req: GraphRequest, id: str, cast: str | None) -> GraphResponse:
    """The groups a device is a direct member of (groups only: the simulator has no administrative units)."""
    if cast is not None and cast.lower() not in ("microsoft.graph.group", "graph.group"):
        raise GraphHTTPError(400, "BadRequest", f"Resource not found for the segment '{cast}'.")
    index = _device(ctx, id=id)
    groups = [g.to_graph() for g in ctx.tenant.group_index.items if index in g.devices]
    select = _top_level_select(req, groups[0] if groups else ("id", "displayName"), allowed=("$top",))
    value = [{"@odata.type": "#microsoft.graph.group", **_project(g, select)} for g in groups]
    return json_response({"@odata.context": f"{ctx.base_url}/$metadata#groups", "value": value})


@route("GET", "/devices/{id}/memberOf", "devices.read")
def member_of(ctx: Pipeline, req: GraphRequest, id: str) -> GraphResponse:
    return _member_of(ctx, req, id, None)


@route("GET", "/devices/{id}/memberOf/{cast}", "devices.read")
def member_of_cast(ctx: Pipeline, req: GraphRequest, id: str, cast: str) -> GraphResponse:
    return _member_of(ctx, req, id, cast)


# =========================================================================== users


def _user_field(name: str) -> str | None:
    lower = {f.lower(): f for f in (*USER_DEFAULT_FIELDS, *USER_EXTRA_FIELDS)}
    return lower.get(name.strip().lower())


def _user_index(ctx: Pipeline, key: str) -> int:
    index = ctx.tenant.find_user(key)
    if index is None:
        raise not_found(key)
    return index


def _user_json(ctx: Pipeline, index: int, select: Sequence[str] | None) -> dict[str, Any]:
    user = ctx.tenant.users[index]
    data = {**user.to_graph(), "accountEnabled": user.account_enabled}
    if select is None:
        return {k: data[k] for k in USER_DEFAULT_FIELDS}
    return {k: data[k] for k in select}


@route("GET", "/users/{key}", "users.read")
def get_user(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    index = _user_index(ctx, key)
    select = _select_only(req, _user_field)
    return json_response({"@odata.context": f"{ctx.base_url}/$metadata#users/$entity", **_user_json(ctx, index, select)})


@route("GET", "/users/{key}/registeredDevices", "devices.read")
def user_registered_devices(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    index = _user_index(ctx, key)
    select = _select_only(req, canonical_field)
    store = ctx.tenant.devices
    with ctx.tenant.lock:
        records = store.render(ctx.tenant.device_indexes_of_user(index), plan_selection(select))
    records = [b'{"@odata.type":"#microsoft.graph.device",' + r[1:] if r != b"{}" else r for r in records]
    return _page(ctx, "directoryObjects", records, None, None)


@route("POST", "/users/{key}/checkMemberGroups", "users.checkMemberGroups", units=4)
def check_member_groups(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    index = _user_index(ctx, key)
    body = req.json()
    ids = body.get("groupIds") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise GraphHTTPError(400, "Request_BadRequest", 'Send {"groupIds": ["<group id>", ...]} with 1 to 20 ids.')
    if len(ids) > MAX_CHECK_GROUPS:
        raise GraphHTTPError(
            400,
            "Request_BadRequest",
            f"checkMemberGroups takes at most {MAX_CHECK_GROUPS} group ids; this request has {len(ids)}.",
        )
    groups = ctx.tenant.group_index
    value = [gid for gid in ids if (g := groups.get(gid)) is not None and groups.user_is_member(g, index)]
    return json_response({"@odata.context": f"{ctx.base_url}/$metadata#Collection(Edm.String)", "value": value})


def _addresses(recipients: Any, field_name: str) -> list[str]:
    if recipients is None:
        return []
    if not isinstance(recipients, list):
        raise GraphHTTPError(400, "ErrorInvalidRecipients", f"{field_name} must be a list of recipients.")
    out = []
    for r in recipients:
        address = r.get("emailAddress", {}).get("address") if isinstance(r, dict) else None
        if not isinstance(address, str) or "@" not in address:
            raise GraphHTTPError(400, "ErrorInvalidRecipients", f"At least one recipient in {field_name} is not valid: {r!r}.")
        out.append(address)
    return out


@route("POST", "/users/{key}/sendMail", "mail.send")
def send_mail(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    sender = ctx.tenant.users[_user_index(ctx, key)]
    if not sender.mail:
        raise GraphHTTPError(404, "MailboxNotEnabledForRESTAPI", f"The mailbox of {sender.user_principal_name} is not enabled.")
    body = req.json()
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        raise GraphHTTPError(400, "ErrorInvalidRequest", 'sendMail needs {"message": {...}}.')
    to = _addresses(message.get("toRecipients"), "toRecipients")
    cc = _addresses(message.get("ccRecipients"), "ccRecipients")
    bcc = _addresses(message.get("bccRecipients"), "bccRecipients")
    if not (to or cc or bcc):
        raise GraphHTTPError(400, "ErrorInvalidRecipients", "At least one recipient is required.")
    content = message.get("body") or {}
    ctx.tenant.outbox.append(
        {
            "from": sender.mail,
            "to": to,
            "cc": cc,
            "bcc": bcc,
            "subject": message.get("subject") or "",
            "body": content.get("content", "") if isinstance(content, dict) else str(content),
            "content_type": content.get("contentType", "text") if isinstance(content, dict) else "text",
            "at": datetime.now(UTC),
            "request_id": req.request_id,
        }
    )
    return GraphResponse(202)


# =========================================================================== groups


def _group(ctx: Pipeline, key: str) -> Group:
    group = ctx.tenant.group_index.get(key)
    if group is None:
        raise not_found(key)
    return group


@route("GET", "/groups/{key}", "groups.members")
def get_group(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    group = _group(ctx, key)
    return json_response({"@odata.context": f"{ctx.base_url}/$metadata#groups/$entity", **group.to_graph()})


def _members(ctx: Pipeline, req: GraphRequest, key: str, transitive: bool, cast: str | None) -> GraphResponse:
    tenant, group = ctx.tenant, _group(ctx, key)
    groups = tenant.group_index
    kinds = {
        "microsoft.graph.device": "device",
        "microsoft.graph.user": "user",
        "microsoft.graph.group": "group",
        "graph.device": "device",
        "graph.user": "user",
        "graph.group": "group",
        None: None,
    }
    if cast not in kinds:
        raise GraphHTTPError(400, "BadRequest", f"Resource not found for the segment '{cast}'.")
    kind = kinds[cast]
    if any(k.lower() == "$filter" for k in req.query):
        raise GraphHTTPError(
            400, "Request_UnsupportedQuery", "The simulator does not filter group members; list them and filter locally."
        )
    q = odata.parse_list_query(
        req.query,
        req.headers,
        resource="DirectoryObject",
        select_field=lambda name: name.strip() or None,
    )
    store = tenant.devices
    members: list[tuple[str, int]] = []
    if kind in (None, "user"):
        users = groups.transitive_users(group) if transitive else group.users
        members += [("user", u) for u in users]
    if kind in (None, "group"):
        nested = [g for g in groups.closure(group) if g is not group] if transitive else [groups.items[i] for i in group.groups]
        members += [("group", groups.items.index(g)) for g in nested]
    if kind in (None, "device"):
        devices = groups.transitive_devices(group) if transitive else group.devices
        members += [("device", d) for d in devices if not store.deleted[d]]
    page = members[q.position : q.position + q.top]
    records = []
    for member_kind, index in page:
        if member_kind == "device":
            data = store.full(index)
        elif member_kind == "user":
            data = _user_json(ctx, index, None)
        else:
            data = groups.items[index].to_graph()
        if q.select:
            data = {k: data.get(k) for k in q.select}
        records.append(_encode({"@odata.type": f"#microsoft.graph.{member_kind}", **data}))
    end = q.position + len(page)
    path = f"/groups/{key}/{'transitiveMembers' if transitive else 'members'}" + (f"/{cast}" if cast else "")
    link = _next_link(ctx, path, q.params, odata.encode_skiptoken(end, q.signature())) if end < len(members) else None
    return _page(ctx, "directoryObjects", records, len(members) if q.count else None, link)


@route("GET", "/groups/{key}/transitiveMembers", "groups.members")
def transitive_members(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    return _members(ctx, req, key, True, None)


@route("GET", "/groups/{key}/transitiveMembers/{cast}", "groups.members")
def transitive_members_cast(ctx: Pipeline, req: GraphRequest, key: str, cast: str) -> GraphResponse:
    return _members(ctx, req, key, True, cast)


@route("GET", "/groups/{key}/members", "groups.members")
def members(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    return _members(ctx, req, key, False, None)


@route("GET", "/groups/{key}/members/{cast}", "groups.members")
def members_cast(ctx: Pipeline, req: GraphRequest, key: str, cast: str) -> GraphResponse:
    return _members(ctx, req, key, False, cast)


# =========================================================================== policy, organization


@route("GET", "/policies/deviceRegistrationPolicy", "policy.deviceRegistration")
def device_registration_policy(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    return json_response(ctx.tenant.policy.to_graph(ctx.base_url))


@route("GET", "/organization", "organization.read")
def organization(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    tenant = ctx.tenant
    return json_response(
        {
            "@odata.context": f"{ctx.base_url}/$metadata#organization",
            "value": [
                {
                    "id": tenant.tenant_id,
                    "displayName": "Contoso (simulated)",
                    "verifiedDomains": [{"name": tenant.domain, "isDefault": True, "isInitial": True, "type": "Managed"}],
                }
            ],
        }
    )


# =========================================================================== BitLocker, Intune


def _device_id_filter(req: GraphRequest, prop: str) -> str:
    text = req.query.get("$filter")
    if text is None:
        raise GraphHTTPError(400, "BadRequest", f"The simulator answers this list only with $filter={prop} eq '<deviceId>'.")
    node = odata.parse_filter(text)
    if not (
        isinstance(node, odata.Cmp) and node.prop.lower() == prop.lower() and node.op == "eq" and node.value.kind == odata.STR
    ):
        raise GraphHTTPError(400, "Request_UnsupportedQuery", f"Unsupported filter {text!r}; use {prop} eq '<deviceId>'.")
    return node.value.value


@route("GET", "/informationProtection/bitlocker/recoveryKeys", "bitlocker.keys")
def bitlocker_keys(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    device_id = _device_id_filter(req, "deviceId")
    index = ctx.tenant.devices.find_by_device_id(device_id)
    value = ctx.tenant.bitlocker_keys(index) if index is not None else []
    return json_response(
        {"@odata.context": f"{ctx.base_url}/$metadata#informationProtection/bitlocker/recoveryKeys", "value": value}
    )


@route("GET", "/deviceManagement/managedDevices", "intune.managedDevices")
def managed_devices(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    device_id = _device_id_filter(req, "azureADDeviceId")
    index = ctx.tenant.find_intune(device_id)
    record = ctx.tenant.intune_record(index) if index is not None else None
    select = req.query.get("$select")
    if record is not None and select:
        record = {k: record.get(k) for k in (s.strip() for s in select.split(","))}
    return json_response(
        {"@odata.context": f"{ctx.base_url}/$metadata#deviceManagement/managedDevices", "value": [record] if record else []}
    )


# =========================================================================== LAPS, Conditional Access, dynamic groups

_LAPS_FIELDS = {name.lower(): name for name in ("id", "deviceName", "lastBackupDateTime", "refreshDateTime")}


def _laps_field(name: str) -> str | None:
    return _LAPS_FIELDS.get(name.strip().lower())


@route("GET", "/directory/deviceLocalCredentials/{key}", "laps.read")
def device_local_credential(ctx: Pipeline, req: GraphRequest, key: str) -> GraphResponse:
    """deviceLocalCredentialInfo by deviceId: metadata, or 404 when no LAPS password is stored for it."""
    requested = req.query.get("$select", "")
    if "credentials" in {part.strip().lower() for part in requested.split(",")}:
        if not req.caller.holds_any(("DeviceLocalCredential.Read.All",)):
            raise GraphHTTPError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation. $select=credentials needs DeviceLocalCredential.Read.All.",
            )
        raise GraphHTTPError(400, "BadRequest", "The simulator stores no LAPS passwords; select metadata only.")
    select = _select_only(req, _laps_field)
    index = ctx.tenant.devices.find_by_device_id(key)
    info = ctx.tenant.laps_info(index) if index is not None else None
    if info is None:
        raise not_found(key)
    if select is not None:
        info = {name: info[name] for name in select}
    return json_response({"@odata.context": f"{ctx.base_url}/$metadata#directory/deviceLocalCredentials/$entity", **info})


def _top_level_select(req: GraphRequest, known: Iterable[str], allowed: Iterable[str] = ()) -> tuple[str, ...] | None:
    """$select over an object's top-level properties (any case); other query options than `allowed` are refused."""
    lower = {name.lower(): name for name in known}
    allowed_lower = {"$select", *(option.lower() for option in allowed)}
    for option in req.query:
        if option.startswith("$") and option.lower() not in allowed_lower:
            raise GraphHTTPError(400, "BadRequest", f"The simulator does not support '{option}' on this collection.")
    text = req.query.get("$select")
    if not text:
        return None
    names = []
    for raw in text.split(","):
        name = lower.get(raw.strip().lower())
        if name is None:
            raise GraphHTTPError(400, "BadRequest", f"Could not find a property named '{raw.strip()}' on this type.")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _project(item: Mapping[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    return dict(item) if select is None else {"id": item["id"], **{name: item[name] for name in select}}


@route("GET", "/identity/conditionalAccess/policies", "policy.conditionalAccess")
def conditional_access_policies(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    """The tenant's Conditional Access policies (none unless a test adds them)."""
    policies = ctx.tenant.conditional_access_policies
    known = policies[0].keys() if policies else ("id", "displayName", "state", "conditions")
    select = _top_level_select(req, known)
    return json_response(
        {
            "@odata.context": f"{ctx.base_url}/$metadata#identity/conditionalAccess/policies",
            "value": [_project(policy, select) for policy in policies],
        }
    )


_DYNAMIC_FILTER = re.compile(r"\s*groupTypes/any\((\w+)\s*:\s*\1\s+eq\s+'DynamicMembership'\)\s*", re.IGNORECASE)


@route("GET", "/groups", "groups.read")
def list_groups(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    """Groups, all or only the dynamic ones ($filter=groupTypes/any(c:c eq 'DynamicMembership'))."""
    groups = [group.to_graph() for group in ctx.tenant.group_index.items]
    select = _top_level_select(req, groups[0] if groups else ("id",), allowed=("$filter", "$top"))
    text = req.query.get("$filter")
    if text is not None:
        if not _DYNAMIC_FILTER.fullmatch(text):
            raise GraphHTTPError(
                400, "Request_UnsupportedQuery",
                f"Unsupported filter {text!r}; the simulator filters groups only by groupTypes/any(c:c eq 'DynamicMembership').",
            )  # fmt: skip
        groups = [group for group in groups if "DynamicMembership" in group["groupTypes"]]
    top = req.query.get("$top")
    if top is not None and not (top.isdigit() and 1 <= int(top) <= 999 and int(top) >= len(groups)):
        raise GraphHTTPError(400, "BadRequest", "The simulator serves groups in one page: $top must be 1..999 and cover all.")
    return json_response({"@odata.context": f"{ctx.base_url}/$metadata#groups", "value": [_project(g, select) for g in groups]})


# =========================================================================== deleted items (beta): device soft delete
#
# Device soft delete (preview; Microsoft Learn, device management docs dated 2026-04): deleted Entra joined and
# registered devices stay in deleted items for 30 days, listed and restored through Graph beta; hybrid joined objects
# are never there. A restored device comes back with its id and deviceId, non-compliant until it checks in.

DELETED_DEVICE_CAST = "microsoft.graph.device"
MAX_DELETED_PAGE = 999


def _deleted_json(ctx: Pipeline, index: int) -> dict[str, Any]:
    """A deleted device as Graph beta shows it: the device's properties with deletedDateTime set."""
    tenant = ctx.tenant
    device = {**OTHER_FIELDS, **tenant.devices.full(index)}
    device["deletedDateTime"] = timefmt.iso(timefmt.epoch(tenant.deleted_at(index) or tenant.clock()))
    return device


def _deleted_select(req: GraphRequest) -> tuple[str, ...] | None:
    text = req.query.get("$select")
    if not text:
        return None
    names: list[str] = []
    for raw in text.split(","):
        name = canonical_field(raw)
        if name is None:
            raise GraphHTTPError(400, "BadRequest", f"Could not find a property named '{raw.strip()}' on this type.")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _shaped(device: Mapping[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    body = dict(device) if select is None else {"id": device["id"], **{name: device[name] for name in select}}
    return {"@odata.type": "#microsoft.graph.device", **body}


@route("GET", "/directory/deletedItems/microsoft.graph.device", "devices.readDeleted", version="beta")
def list_deleted_devices(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    """Devices in deleted items, paged ($select, $top, $skiptoken; other options refused)."""
    for option in req.query:
        if option.startswith("$") and option.lower() not in ("$select", "$top", "$skiptoken"):
            raise GraphHTTPError(400, "BadRequest", f"The simulator does not support '{option}' on deleted items.")
    select = _deleted_select(req)
    top_text = req.query.get("$top", "100")
    if not top_text.isdigit() or not 1 <= int(top_text) <= MAX_DELETED_PAGE:
        raise GraphHTTPError(400, "BadRequest", f"$top must be 1..{MAX_DELETED_PAGE}, not {top_text!r}.")
    signature = hash(("deleted", select))
    token = req.query.get("$skiptoken")
    position = odata.decode_skiptoken(token, signature) if token else 0
    with ctx.tenant.lock:
        indexes = ctx.tenant.deleted_indexes()
        page = indexes[position : position + int(top_text)]
        records = [_encode(_shaped(_deleted_json(ctx, i), select)) for i in page]
    beta = ctx.version_url("beta")
    end = position + len(page)
    link = None
    if end < len(indexes):
        params = {k: v for k, v in req.query.items() if k != "$skiptoken"}
        query = urlencode({**params, "$skiptoken": odata.encode_skiptoken(end, signature)}, quote_via=quote, safe="$'(),:/")
        link = f"{beta}/directory/deletedItems/{DELETED_DEVICE_CAST}?{query}"
    head = b'{"@odata.context":' + _encode(f"{beta}/$metadata#directory/deletedItems/{DELETED_DEVICE_CAST}")
    if link is not None:
        head += b',"@odata.nextLink":' + _encode(link)
    return GraphResponse(200, b"".join((head, b',"value":[', b",".join(records), b"]}")))


def _deleted_index(ctx: Pipeline, id: str) -> int:
    index = ctx.tenant.deleted_index(id)
    if index is None:
        raise not_found(id)
    return index


@route("GET", "/directory/deletedItems/{id}", "devices.readDeleted", version="beta")
def get_deleted_item(ctx: Pipeline, req: GraphRequest, id: str) -> GraphResponse:
    """One deleted device; 404 when it is not in deleted items (live, hybrid, older than 30 days, unknown)."""
    for option in req.query:
        if option.startswith("$") and option.lower() != "$select":
            raise GraphHTTPError(400, "BadRequest", f"Query option '{option}' is not supported on a single object.")
    select = _deleted_select(req)
    with ctx.tenant.lock:
        body = _shaped(_deleted_json(ctx, _deleted_index(ctx, id)), select)
    context = f"{ctx.version_url('beta')}/$metadata#directoryObjects/$entity"
    return json_response({"@odata.context": context, **body})


@route("POST", "/directory/deletedItems/{id}/restore", "devices.restore", writes=1, version="beta")
def restore_deleted_item(ctx: Pipeline, req: GraphRequest, id: str) -> GraphResponse:
    """Restore a deleted device: 200 with the restored object (isCompliant false until the device checks in)."""
    tenant = ctx.tenant
    status, code = 200, None
    try:
        with tenant.lock:
            index = _deleted_index(ctx, id)
            tenant.restore_device(index)
            body = {**OTHER_FIELDS, **tenant.devices.full(index)}
    except GraphHTTPError as exc:
        status, code = exc.status, exc.code
        raise
    finally:
        tenant.record_write(
            WriteRecord("POST", id, None, datetime.now(UTC), status, req.request_id, req.caller.app, code)
        )
    ctx.stats.writes += 1
    context = f"{ctx.version_url('beta')}/$metadata#directoryObjects/$entity"
    return json_response({"@odata.context": context, "@odata.type": "#microsoft.graph.device", **body})


# =========================================================================== $batch


@route("POST", "/$batch", "none", units=0)
def batch(ctx: Pipeline, req: GraphRequest) -> GraphResponse:
    """Up to 20 inner requests, each through the full pipeline; a failed dependency answers 424."""
    payload = req.json()
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        raise GraphHTTPError(400, "BadRequest", 'A $batch body is {"requests": [...]} with 1 to 20 requests.')
    if len(requests) > MAX_BATCH:
        raise GraphHTTPError(
            400, "BadRequest", f"A $batch may contain at most {MAX_BATCH} requests; this one has {len(requests)}."
        )
    seen: dict[str, int] = {}
    for item in requests:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "method", "url")):
            raise GraphHTTPError(400, "BadRequest", "Every batch request needs string id, method and url.")
        if item["id"] in seen:
            raise GraphHTTPError(400, "BadRequest", f"Batch request ids must be unique; '{item['id']}' repeats.")
        for dep in item.get("dependsOn") or []:
            if dep not in seen:
                raise GraphHTTPError(
                    400, "BadRequest", f"Request '{item['id']}' depends on '{dep}', which is not an earlier request of the batch."
                )
        if item.get("body") is not None:
            names = {k.lower() for k in (item.get("headers") or {})}
            if "content-type" not in names:
                raise GraphHTTPError(
                    400, "BadRequest", f"Write request id : {item['id']} does not contain Content-Type header or body."
                )
        seen[item["id"]] = 0
    ctx.stats.batches += 1
    outcomes: dict[str, int] = {}
    responses = []
    for item in requests:
        inner_id = item["id"]
        failed = [d for d in item.get("dependsOn") or [] if outcomes.get(d, 500) >= 400]
        if failed:
            body = {"error": {"code": "FailedDependency", "message": f"Dependency {failed[0]} failed."}}
            responses.append({"id": inner_id, "status": 424, "headers": {"Content-Type": "application/json"}, "body": body})
            outcomes[inner_id] = 424
            continue
        inner = _inner_request(req, item)
        if inner.path.lower() == "/$batch":
            body = {"error": {"code": "BadRequest", "message": "A $batch request cannot contain another $batch."}}
            responses.append({"id": inner_id, "status": 400, "headers": {"Content-Type": "application/json"}, "body": body})
            outcomes[inner_id] = 400
            continue
        response = ctx.handle(inner)
        outcomes[inner_id] = response.status
        entry: dict[str, Any] = {
            "id": inner_id,
            "status": response.status,
            "headers": {**({"Content-Type": response.content_type} if response.body else {}), **response.headers},
        }
        if response.body is not None:
            entry["body"] = (
                msgspec.Raw(response.body) if response.content_type.startswith("application/json") else response.body.decode()
            )
        responses.append(entry)
    ctx.faults.shuffle(responses)
    return GraphResponse(200, _encode({"responses": responses}))


def _inner_request(outer: GraphRequest, item: Mapping[str, Any]) -> GraphRequest:
    try:
        path, query = split_url(item["url"])
    except GraphHTTPError:
        path, query = "/" + item["url"].lstrip("/"), {}
    headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    body = item.get("body")
    raw = None
    if body is not None:
        raw = _encode(body) if not isinstance(body, str) else _maybe_base64(body)
    return GraphRequest(
        method=item["method"].upper(),
        path=path,
        query=query,
        headers=headers,
        body=raw,
        caller=outer.caller,
        client_request_id=headers.get("client-request-id"),
        inner=True,
        version=outer.version,
    )


def _maybe_base64(text: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return text.encode()
