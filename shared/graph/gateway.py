"""GraphGateway: the GraphPort adapter over msgraph-sdk.

Requests are built with the SDK's fluent builders and sent through its request adapter, so its auth
provider and middleware apply, but responses are taken raw (the adapter's native response handler) and
decoded with msgspec: kiota models decode ~350 devices/s, msgspec several hundred thousand. The bulk scan
streams pages (fetching the next while the caller works on the current one, never more than two held).
Writes go out in $batch requests of up to 20, paced under the write budget, with inner 429s re-sent after
their Retry-After; each input gets a GraphResult, in input order, carrying Graph's request-id.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec

from shared.errors import GraphError, GraphNotFound, GraphUnavailable
from shared.graph import deleted, paths, wire
from shared.graph.client import Endpoint, auth_provider, build_client, endpoint_from, http_client
from shared.graph.concurrency import throttle_percent
from shared.graph.failures import (
    RETRYABLE_STATUSES,
    TransientResponse,
    failure_message,
    graph_error,
    header,
    parse_retry_after,
    request_id_of,
)
from shared.graph.pacer import MAX_BURST, WritePacer
from shared.graph.query import is_guid, literal, needs_advanced_query
from shared.graph.retry import RetryPolicy, with_retries
from shared.jsonshape import is_dict
from shared.models import DEVICE_SELECT, Device
from shared.ports import DeletedDevice, GraphResult, GroupRef, Owner, RequestGate

if TYPE_CHECKING:
    import httpx
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.graph_service_client import GraphServiceClient

#: Graph's largest page and largest $batch.
MAX_PAGE_SIZE = 999
MAX_BATCH = MAX_BURST
#: The user fields read for owners, requesters and mail recipients.
USER_SELECT = ("id", "displayName", "userPrincipalName", "mail")
ADVANCED_HEADERS: Mapping[str, str] = {"ConsistencyLevel": "eventual"}
#: deviceLocalCredentialInfo metadata; `credentials` (the passwords) is never asked for.
LAPS_SELECT = ("id", "deviceName", "lastBackupDateTime", "refreshDateTime")


class GraphGateway:
    """Microsoft Graph for the core (implements `shared.ports.GraphPort`).

    `auth` is an Azure credential, a kiota AuthenticationProvider, or None for anonymous (loopback only).
    Nothing is connected until the first call; `close()` (or `async with`) releases the HTTP client and
    the credential when `owns_auth`.
    """

    def __init__(
        self,
        base_url: str,
        auth: Any | None = None,
        *,
        retry: RetryPolicy | None = None,
        pacer: WritePacer | None = None,
        parallel_batches: int = 4,
        owns_auth: bool = False,
    ) -> None:
        self._endpoint: Endpoint = endpoint_from(base_url)
        self._auth = auth
        self._provider = auth_provider(self._endpoint, auth)  # refuses anonymous to a non-loopback host
        self._retry = retry or RetryPolicy()
        self._pacer = pacer or WritePacer(3000, 150)
        self._parallel_batches = max(1, parallel_batches)
        self._owns_auth = owns_auth
        self._graph: GraphServiceClient | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        return self._endpoint.base_url

    @property
    def pacer(self) -> WritePacer:
        return self._pacer

    @property
    def client(self) -> GraphServiceClient:
        """The msgraph-sdk client (built on first use)."""
        if self._graph is None:
            self._http = http_client(self._endpoint)
            self._graph = build_client(self._endpoint, self._provider, self._http)
        return self._graph

    async def __aenter__(self) -> GraphGateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._graph = self._http = None
        auth = self._auth
        if self._owns_auth and auth is not None and hasattr(auth, "close"):
            closing = auth.close()
            if asyncio.iscoroutine(closing):
                await closing

    # ------------------------------------------------------------------ sending

    async def _attempt(self, info: RequestInformation) -> httpx.Response:
        """One request through the SDK adapter; a failure becomes a typed error (TransientResponse if retryable)."""
        import httpx
        from kiota_abstractions.native_response_handler import NativeResponseHandler
        from kiota_http.middleware.options import ResponseHandlerOption

        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        try:
            # With the native response handler the adapter hands back the raw httpx response (typed Optional).
            response = cast("httpx.Response", await self.client.request_adapter.send_primitive_async(info, "bytes", None))
        except httpx.TransportError as exc:
            error = GraphUnavailable(
                f"could not reach Microsoft Graph at {self._endpoint.origin} ({type(exc).__name__}: {exc}); "
                "check GRAPH_BASE_URL and the network"
            )
            raise TransientResponse(error) from exc
        # The body is read; httpx's Response and its stream refer to each other, a cycle that would keep every
        # page (~1.4 MB) alive until the garbage collector runs: with many partitions read at once, dozens.
        response.stream = httpx.ByteStream(b"")
        if response.status_code < 400:
            return response
        detail = wire.decode_error(response.content)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        method = response.request.method
        error = graph_error(
            response.status_code,
            detail,
            request_id_of(response.headers, detail),
            method,
            self._endpoint.relative(str(response.request.url)),
            retry_after=retry_after,
        )
        if response.status_code in RETRYABLE_STATUSES:
            raise TransientResponse(error, retry_after)
        raise error

    async def _send(
        self, make_info: Callable[[], RequestInformation], gate: RequestGate | None = None
    ) -> httpx.Response:
        """A request with retries; `make_info` builds a fresh RequestInformation for every attempt.

        With a `gate`, each attempt waits for a place in it (never while sleeping between attempts).
        """
        first = make_info()
        method = first.http_method.value if first.http_method else "GET"
        what = f"{method} {self._endpoint.relative(first.url)}"
        infos = [first]

        async def attempt() -> httpx.Response:
            info = infos.pop() if infos else make_info()
            return await (self._attempt(info) if gate is None else self._gated(gate, info))

        return await with_retries(self._retry, attempt, what)

    async def _gated(self, gate: RequestGate, info: RequestInformation) -> httpx.Response:
        """One attempt inside the caller's gate, which then hears the status and Graph's throttle header."""
        try:
            async with gate.slot():
                response = await self._attempt(info)
        except TransientResponse as exc:
            gate.observe(exc.error.status or 0, None)
            raise
        gate.observe(response.status_code, throttle_percent(response.headers))
        return response

    def _get(self, builder: Any, *, headers: Mapping[str, str] | None = None, **query: Any) -> RequestInformation:
        """A GET from a fluent request builder, with OData query options (None values left out)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration

        params = getattr(builder, f"{type(builder).__name__}GetQueryParameters")
        config: RequestConfiguration[Any] = RequestConfiguration(
            query_parameters=params(**{name: value for name, value in query.items() if value is not None})
        )
        for name, value in (headers or {}).items():
            config.headers.add(name, value)
        info: RequestInformation = builder.to_get_request_information(config)
        if info.url_template:  # OData casts: the SDK writes the alias /graph.device, Graph documents /microsoft.graph.device
            info.url_template = info.url_template.replace("/graph.", "/microsoft.graph.")
        return info

    def _next(self, url: str, headers: Mapping[str, str]) -> RequestInformation:
        """The request for an @odata.nextLink (absolute), refusing links to any other host."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        if not self._endpoint.same_origin(url):
            raise GraphError(f"Graph returned a nextLink to another host ({url[:80]}); refusing to follow it")
        info = RequestInformation(Method.GET)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        for name, value in headers.items():
            info.headers.add(name, value)
        return info

    def _post(self, builder: Any, payload: Any) -> RequestInformation:
        """A POST with a JSON body (encoded with msgspec) to a fluent builder's URL."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        info = RequestInformation(Method.POST, builder.url_template, dict(builder.path_parameters))
        info.headers.try_add("Accept", "application/json")
        info.set_stream_content(wire.ENCODER.encode(payload), "application/json")
        return info

    async def _responses(
        self, make_first: Callable[[], RequestInformation], headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """The raw response of every page of a collection, one at a time."""
        make = make_first
        while True:
            response = await self._send(make)
            yield response
            next_link = _read(wire.NEXT_LINK, response).next_link
            if not next_link:
                return
            make = functools.partial(self._next, next_link, headers or {})

    async def _pages[T](
        self,
        make_first: Callable[[], RequestInformation],
        decoder: msgspec.json.Decoder[wire.Page[T]],
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[wire.Page[T]]:
        """Every page of a collection, decoded, one at a time."""
        async for response in self._responses(make_first, headers):
            yield _read(decoder, response)

    async def _collect[T](
        self, make_first: Callable[[], RequestInformation], decoder: msgspec.json.Decoder[wire.Page[T]], **kw: Any
    ) -> list[T]:
        items: list[T] = []
        async for page in self._pages(make_first, decoder, **kw):
            items.extend(page.value)
        return items

    async def _get_one(self, make_builder: Callable[[], Any], select: Iterable[str]) -> httpx.Response | None:
        """GET one object; None instead of GraphNotFound (gone, or a key that cannot be one: then nothing is sent)."""
        try:
            builder = make_builder()
            return await self._send(functools.partial(self._get, builder, select=list(select)))
        except GraphNotFound:
            return None

    # ------------------------------------------------------------------ devices

    async def iter_devices(
        self,
        *,
        filter: str | None = None,
        select: Iterable[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        advanced: bool | None = None,
        gate: RequestGate | None = None,
        prefetch: bool = True,
    ) -> AsyncIterator[list[Device]]:
        """Pages of devices, decoded raw with msgspec; the next page is fetched while the caller handles this one
        (unless not `prefetch`: readers of many collections at once hold one page each, not two).

        Filters that need an advanced query (ne, not, `eq null`, ...) get `ConsistencyLevel: eventual` and
        `$count=true` automatically; `advanced` forces it on or off. Every page request passes `gate`.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
        fields = list(DEVICE_SELECT) if select is None else list(dict.fromkeys(["id", *select]))
        use_advanced = needs_advanced_query(filter) if advanced is None else advanced
        headers: Mapping[str, str] = ADVANCED_HEADERS if use_advanced else {}
        first = functools.partial(
            self._get, self.client.devices, headers=headers, select=fields, filter=filter, top=page_size,
            count=True if use_advanced else None,
        )
        fetch: asyncio.Future[httpx.Response] | None = asyncio.ensure_future(self._send(first, gate))
        try:
            while fetch is not None:
                response = await fetch
                fetch = None
                page = _read(wire.DEVICE_PAGE, response)
                del response
                following = functools.partial(self._next, page.next_link, headers) if page.next_link else None
                if following is not None and prefetch:
                    fetch = asyncio.ensure_future(self._send(following, gate))
                if page.value:
                    yield page.value
                if following is not None and fetch is None:
                    fetch = asyncio.ensure_future(self._send(following, gate))
        finally:
            if fetch is not None:
                fetch.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await fetch

    async def count_devices(self, *, filter: str | None = None) -> int:
        """How many devices Graph counts (`/devices/$count`, an advanced query: eventually consistent)."""
        make = functools.partial(self._get, self.client.devices.count, headers=ADVANCED_HEADERS, filter=filter)
        response = await self._send(make)
        text = response.content.strip()
        if not text.isdigit():  # an unreadable answer is a fault of the moment, like any other (retried)
            raise GraphUnavailable(
                f"Graph's answer to GET /devices/$count is not a count: {text[:40]!r}",
                status=response.status_code,
                request_id=response.headers.get("request-id"),
            )
        return int(text)

    async def get_device(self, object_id: str) -> Device | None:
        """The device by object id; None when it no longer exists."""
        response = await self._get_one(lambda: self.client.devices.by_device_id(paths.object_id(object_id)), DEVICE_SELECT)
        return None if response is None else _read(wire.DEVICE, response)

    async def get_device_by_device_id(self, device_id: str) -> Device | None:
        """The device by its deviceId (the DRS GUID BitLocker and Intune use); None when absent."""
        response = await self._get_one(
            lambda: self.client.devices_with_device_id(paths.object_id(device_id, "deviceId")), DEVICE_SELECT
        )
        return None if response is None else _read(wire.DEVICE, response)

    async def find_devices(self, name_or_id: str) -> list[Device]:
        """By object id, deviceId, or exact displayName (duplicates from re-joins all come back)."""
        text = name_or_id.strip()
        if not text:
            return []
        found: dict[str, Device] = {}
        if is_guid(text):
            for device in (await self.get_device(text), await self.get_device_by_device_id(text)):
                if device is not None:
                    found[device.id] = device
            if found:
                return list(found.values())
        async for page in self.iter_devices(filter=f"displayName eq {literal(text)}"):
            for device in page:
                found[device.id] = device
        return list(found.values())

    async def user_registered_devices(self, user_id: str) -> list[Device]:
        """The devices the user registered (directory objects of other types left out)."""
        builder = self.client.users.by_user_id(paths.user_key(user_id)).registered_devices
        make = functools.partial(self._get, builder, select=list(DEVICE_SELECT))  # @odata.type comes unasked
        devices: list[Device] = []
        async for response in self._responses(make):
            kinds = _read(wire.TYPE_PAGE, response).value
            page = _read(wire.DEVICE_PAGE, response)
            devices.extend(d for d, kind in zip(page.value, kinds, strict=True) if kind.odata_type in (None, wire.DEVICE_TYPE))
        return devices

    async def group_device_ids(self, group_id: str) -> set[str]:
        """Object ids of the devices that are transitive members of a group."""
        builder = self.client.groups.by_group_id(paths.object_id(group_id, "group id")).transitive_members.graph_device
        make = functools.partial(
            self._get, builder, headers=ADVANCED_HEADERS, select=["id"], top=MAX_PAGE_SIZE, count=True
        )
        ids: list[wire.ObjectId] = await self._collect(make, wire.ID_PAGE, headers=ADVANCED_HEADERS)
        return {item.id for item in ids}

    # ------------------------------------------------------------------ writes

    async def update_devices(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[GraphResult]:
        """PATCH many devices via $batch; one GraphResult per change, in input order."""
        return await self._write("PATCH", [(object_id, dict(body)) for object_id, body in changes])

    async def delete_devices(self, object_ids: Sequence[str]) -> list[GraphResult]:
        """DELETE many devices via $batch; a device already gone comes back as status 404 (done)."""
        return await self._write("DELETE", [(object_id, None) for object_id in object_ids])

    async def _write(self, method: str, items: list[tuple[str, dict[str, Any] | None]]) -> list[GraphResult]:
        for object_id, _ in items:
            paths.device_path(object_id)  # refused before anything is sent
        size = min(MAX_BATCH, self._pacer.burst)
        indexed = list(enumerate(items))
        chunks = [indexed[start : start + size] for start in range(0, len(indexed), size)]
        results: list[GraphResult | None] = [None] * len(items)
        gate = asyncio.Semaphore(self._parallel_batches)

        async def run(chunk: list[tuple[int, tuple[str, dict[str, Any] | None]]]) -> None:
            async with gate:
                for index, result in (await self._batch(method, chunk)).items():
                    results[index] = result

        try:
            async with asyncio.TaskGroup() as group:
                for chunk in chunks:
                    group.create_task(run(chunk))
        except* Exception as failed:  # _batch reports Graph failures as results: this is a bug, raise it plainly
            raise failed.exceptions[0] from None
        missing = [index for index, result in enumerate(results) if result is None]
        if missing:
            raise RuntimeError(f"no result for writes {missing[:5]}")
        return [result for result in results if result is not None]

    async def _batch(
        self, method: str, chunk: list[tuple[int, tuple[str, dict[str, Any] | None]]]
    ) -> dict[int, GraphResult]:
        """One $batch of up to 20 writes, re-sending inner 429/503/504s until done or the retry budget is spent.

        Never raises for Graph failures: an item that could not be written gets a GraphResult saying why
        (status 0 when Graph was never reached), so callers can record an outcome for every device.
        """
        pending: dict[str, tuple[int, str, dict[str, Any] | None]] = {
            str(n): (index, object_id, body) for n, (index, (object_id, body)) in enumerate(chunk, start=1)
        }
        done: dict[int, GraphResult] = {}

        async def attempt() -> None:
            await self._pacer.acquire(len(pending))
            requests = [
                wire.BatchRequest(
                    id=key,
                    method=method,
                    url=paths.device_path(object_id),
                    headers={"Content-Type": "application/json"} if body is not None else {},
                    body=body,
                )
                for key, (_, object_id, body) in pending.items()
            ]
            response = await self._attempt(self._batch_info(wire.ENCODER.encode(wire.BatchEnvelope(requests))))
            outer_request_id = response.headers.get("request-id")
            reply = _read(wire.BATCH_REPLY, response)
            waits: list[float] = []
            last: GraphError | None = None
            for inner in reply.responses:
                entry = pending.get(inner.id)
                if entry is None:
                    continue
                index, object_id, _ = entry
                path = f"/devices/{object_id}"
                if inner.status in RETRYABLE_STATUSES:
                    detail = wire.error_from_inner(inner.body)
                    retry_after = parse_retry_after(header(inner.headers, "Retry-After"))
                    if retry_after is not None:
                        waits.append(retry_after)
                    request_id = request_id_of(inner.headers, detail) or outer_request_id
                    last = graph_error(inner.status, detail, request_id, method, path, retry_after=retry_after)
                    continue
                done[index] = self._inner_result(method, path, inner, outer_request_id)
                del pending[inner.id]
            if pending:
                if last is None:
                    last = GraphUnavailable("Graph's $batch reply left some requests unanswered")
                raise TransientResponse(last, max(waits) if waits else None)

        try:
            await with_retries(self._retry, attempt, f"$batch of {method} /devices/{{id}}")
        except GraphError as exc:
            for index, _, _ in pending.values():
                done[index] = GraphResult(
                    status=exc.status or 0, request_id=exc.request_id, error_code=exc.code, error_message=exc.message
                )
        return done

    def _batch_info(self, content: bytes) -> RequestInformation:
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        info = RequestInformation(Method.POST)
        info.url = f"{self._endpoint.base_url}/$batch"
        info.headers.try_add("Accept", "application/json")
        info.set_stream_content(content, "application/json")
        return info

    @staticmethod
    def _inner_result(method: str, path: str, inner: wire.BatchResponse, outer_request_id: str | None) -> GraphResult:
        body = inner.body if is_dict(inner.body) else None
        if inner.status < 400:
            return GraphResult(status=inner.status, request_id=header(inner.headers, "request-id") or outer_request_id, body=body)
        detail = wire.error_from_inner(inner.body)
        return GraphResult(
            status=inner.status,
            request_id=request_id_of(inner.headers, detail) or outer_request_id,
            body=body,
            error_code=detail.code,
            error_message=failure_message(inner.status, detail, method, path),
        )

    # ------------------------------------------------------------------ users, groups, policy

    async def registered_owners(self, object_id: str) -> list[Owner]:
        builder = self.client.devices.by_device_id(paths.object_id(object_id)).registered_owners
        users: list[wire.UserWire] = await self._collect(
            functools.partial(self._get, builder, select=list(USER_SELECT)), wire.USER_PAGE
        )
        return [_owner(user) for user in users]

    async def get_user(self, user: str) -> Owner | None:
        """By object id or UPN; None when there is no such user."""
        response = await self._get_one(lambda: self.client.users.by_user_id(paths.user_key(user)), USER_SELECT)
        return None if response is None else _owner(_read(wire.USER, response))

    async def check_member_groups(self, user_id: str, group_ids: Sequence[str]) -> set[str]:
        """Which of `group_ids` the user is a (transitive) member of; asked 20 groups at a time."""
        builder = self.client.users.by_user_id(paths.user_key(user_id)).check_member_groups
        unique = list(dict.fromkeys(group_ids))
        members: set[str] = set()
        for start in range(0, len(unique), 20):
            payload = {"groupIds": unique[start : start + 20]}
            response = await self._send(functools.partial(self._post, builder, payload))
            members.update(_read(wire.STRING_LIST, response).value)
        return members

    async def device_registration_policy(self) -> Mapping[str, Any]:
        builder = self.client.policies.device_registration_policy
        response = await self._send(functools.partial(self._get, builder))
        policy: dict[str, Any] = _read(wire.ANY, response)
        return policy

    async def bitlocker_key_ids(self, device_id: str) -> list[str]:
        """Ids of the BitLocker recovery keys stored for this deviceId (not the keys themselves)."""
        builder = self.client.information_protection.bitlocker.recovery_keys
        make = functools.partial(self._get, builder, filter=f"deviceId eq {literal(device_id)}", select=["id"])
        keys: list[wire.ObjectId] = await self._collect(make, wire.ID_PAGE)
        return [key.id for key in keys]

    async def managed_device_last_sync(self, device_id: str) -> datetime | None:
        """Latest lastSyncDateTime of the Intune records for this deviceId; None when not enrolled."""
        builder = self.client.device_management.managed_devices
        make = functools.partial(
            self._get, builder, filter=f"azureADDeviceId eq {literal(device_id)}", select=["id", "lastSyncDateTime"]
        )
        records: list[wire.ManagedDeviceWire] = await self._collect(make, wire.MANAGED_DEVICE_PAGE)
        synced = [record.last_sync_date_time for record in records if record.last_sync_date_time is not None]
        return max(synced, default=None)

    async def laps_credential_present(self, device_id: str) -> bool:
        """Whether Entra ID stores a Windows LAPS password for this deviceId (deleting the device destroys it).

        GET /directory/deviceLocalCredentials/{deviceId} with the metadata fields only (never `credentials`,
        the passwords): 200 -> True, 404 -> False (Graph docs, "Get deviceLocalCredentialInfo", v1.0;
        DeviceLocalCredential.ReadBasic.All). Any other failure raises: the caller cannot know, so it must not delete.
        """
        key = paths.object_id(device_id, "deviceId")  # raised here: a key that is not a GUID is not "no credential"
        credentials = self.client.directory.device_local_credentials
        response = await self._get_one(lambda: credentials.by_device_local_credential_info_id(key), LAPS_SELECT)
        return response is not None

    async def conditional_access_policies(self) -> list[wire.ConditionalAccessPolicyWire]:
        """Every Conditional Access policy with its device filter (Policy.Read.All; `janitor doctor` only)."""
        builder = self.client.identity.conditional_access.policies
        make = functools.partial(self._get, builder, select=["id", "displayName", "state", "conditions"])
        return await self._collect(make, wire.CA_POLICY_PAGE)

    async def dynamic_groups(self) -> list[wire.GroupRuleWire]:
        """Groups with dynamic membership and their rules (Group.Read.All; `janitor doctor` only)."""
        make = functools.partial(
            self._get, self.client.groups, filter="groupTypes/any(c:c eq 'DynamicMembership')",
            select=["id", "displayName", "groupTypes", "membershipRule"], top=MAX_PAGE_SIZE,
        )
        return await self._collect(make, wire.GROUP_RULE_PAGE)

    async def send_mail(self, sender: str, to: Sequence[str], subject: str, body_html: str) -> GraphResult:
        """Send an HTML mail from `sender`'s mailbox (Graph answers 202); the result carries the request-id."""
        recipients = [address for address in to if address]
        if not recipients:
            raise ValueError("send_mail needs at least one recipient")
        payload = {
            "message": {
                "subject": subject,
                "body": {"contentType": "HTML", "content": body_html},
                "toRecipients": [{"emailAddress": {"address": address}} for address in recipients],
            },
            "saveToSentItems": False,
        }
        builder = self.client.users.by_user_id(paths.user_key(sender)).send_mail
        response = await self._send(functools.partial(self._post, builder, payload))
        return GraphResult(status=response.status_code, request_id=response.headers.get("request-id"))

    async def device_groups(self, object_id: str) -> list[GroupRef]:
        """The groups the device is a direct member of (Device.Read.All): recorded before a delete."""
        builder = self.client.devices.by_device_id(paths.object_id(object_id)).member_of.graph_group
        make = functools.partial(self._get, builder, select=["id", "displayName"], top=MAX_PAGE_SIZE)
        groups: list[wire.GroupNameWire] = await self._collect(make, wire.GROUP_NAME_PAGE)
        return [GroupRef(group.id, group.display_name) for group in groups]

    # ------------------------------------------------------------------ deleted items (Graph beta)

    async def deleted_device(self, object_id: str) -> DeletedDevice | None:
        """The device in deleted items, or None when it is not there (live, hybrid, purged after 30 days, unknown).

        GET /beta/directory/deletedItems/{id} (device soft delete, preview: Microsoft Learn, device docs dated
        2026-04). An object of another type under that id is not a deleted device either.
        """
        try:  # an id that is not a GUID is no deleted device: nothing is sent
            url = deleted.item_url(self._endpoint.base_url, object_id, (*DEVICE_SELECT, "deletedDateTime"))
            response = await self._send(functools.partial(deleted.request, "GET", url))
        except GraphNotFound:
            return None
        stamp = _read(deleted.DELETED_STAMP, response)
        if stamp.odata_type not in (None, deleted.DEVICE_TYPE):
            return None
        return DeletedDevice(_read(wire.DEVICE, response), stamp.deleted_date_time)

    async def restore_deleted_device(self, object_id: str) -> GraphResult:
        """POST /beta/directory/deletedItems/{id}/restore, paced like every write; Graph's refusal is a result.

        A 403 names the permission and the roles Microsoft lists for it (shared/graph/permissions.py: the
        application permission is unconfirmed in Microsoft's docs).
        """
        url = deleted.restore_url(self._endpoint.base_url, object_id)
        await self._pacer.acquire(1)
        try:
            response = await self._send(functools.partial(deleted.request, "POST", url))
        except GraphError as exc:
            return GraphResult(
                status=exc.status or 0, request_id=exc.request_id, error_code=exc.code, error_message=exc.message
            )
        body = _read(wire.ANY, response) if response.content else None
        return GraphResult(
            status=response.status_code,
            request_id=response.headers.get("request-id"),
            body=body if is_dict(body) else None,
        )


def _read[T](decoder: msgspec.json.Decoder[T], response: httpx.Response) -> T:
    """Decode a response body; a body of an unexpected shape is treated like no answer (GraphUnavailable: tried
    again later), and the error names the request."""
    try:
        return decoder.decode(response.content)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        request = response.request
        raise GraphUnavailable(
            f"Graph's answer to {request.method} {request.url.path} does not have the expected shape: {exc}",
            status=response.status_code,
            request_id=response.headers.get("request-id"),
        ) from exc


def _owner(user: wire.UserWire) -> Owner:
    return Owner(id=user.id, display_name=user.display_name, user_principal_name=user.user_principal_name, mail=user.mail)
