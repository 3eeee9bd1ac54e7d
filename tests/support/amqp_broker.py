"""A loopback AMQP 1.0 broker that behaves like one Service Bus namespace, for tests over the wire.

The real SDK (azure-servicebus, pyamqp transport) talks to it through a connection string with
`UseDevelopmentEmulator=true` (plain AMQP, no TLS). It implements what the project uses, no more:

- SASL ANONYMOUS and the CBS `put-token` exchange on `$cbs` (answered with status-code 200);
- sender links to a queue: single messages and Service Bus batches (a batch is a message whose only
  sections are data sections each holding a whole encoded message), duplicate detection by message-id
  within a window (the duplicate is accepted and dropped), `x-opt-scheduled-enqueue-time` honoured;
- receiver links in peek-lock: 16-byte delivery tags (the SDK turns them into lock tokens),
  `x-opt-locked-until`, lock expiry, header `delivery-count` = earlier deliveries (as Service Bus sends it);
  settlement: accepted = complete, released/modified = abandon, rejected = dead-letter with the reason from
  the error info; past the max delivery count a message is dead-lettered with `MaxDeliveryCountExceeded`;
- `$management` requests are answered with status 501, so an unsupported call fails fast instead of hanging.

A proton Container runs in a background thread; one lock guards the state so tests can inspect it.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from proton import Condition, Data, Delivery, Described, Endpoint, Handler, Message, symbol, timestamp
from proton.reactor import Container

_DATA_SECTION = 0x75
_ANY_SECTION = range(0x70, 0x79)
_SCHEDULED = "x-opt-scheduled-enqueue-time"
_ACTIVE = Endpoint.LOCAL_ACTIVE
_LOCK_LOST = "com.microsoft:message-lock-lost"
_OUTCOMES = {Delivery.ACCEPTED: "completed", Delivery.REJECTED: "suspended"}  # else: abandoned
_TICK_SECONDS = 0.02
_CREDIT = 100


@dataclass
class StoredMessage:
    """A message as the broker holds it."""

    seq: int
    message_id: str | None
    body: bytes
    subject: str | None
    application_properties: dict[str, Any]
    annotations: dict[str, Any]
    enqueued_at: float
    visible_at: float
    deliveries: int = 0
    lock_tag: bytes | None = None
    locked_until: float = 0.0


@dataclass
class DeadLettered:
    message: StoredMessage
    reason: str | None
    description: str | None


@dataclass
class BrokerQueue:
    """One queue entity: messages, dead letters, duplicate-detection history and counters."""

    name: str
    messages: list[StoredMessage] = field(default_factory=list)
    dead_letters: list[DeadLettered] = field(default_factory=list)
    completed: list[StoredMessage] = field(default_factory=list)
    seen_ids: dict[str, float] = field(default_factory=dict)
    transfers: list[int] = field(default_factory=list)  # messages per incoming transfer (a batch is one)
    duplicates_dropped: int = 0
    stale_settlements: int = 0  # settlements whose lock had already expired / moved on


def entity_name(address: str | None) -> str:
    """`amqp://host:port/queue` or `queue` -> `queue` (the SDK addresses entities by URI)."""
    if not address:
        return ""
    if "://" in address:
        rest = address.split("://", 1)[1]
        address = rest.split("/", 1)[1] if "/" in rest else ""
    return address.strip("/")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _sections(raw: bytes) -> list[Any]:
    """The top-level sections of an encoded message, as proton objects (Described)."""
    sections = []
    while raw:
        data = Data()
        consumed = data.decode(raw)
        data.rewind()
        data.next()
        section = data.get_object()
        if isinstance(section, Described) and isinstance(section.value, memoryview):
            section = Described(section.descriptor, bytes(section.value))  # the view dies with `data`
        sections.append(section)
        raw = raw[consumed:]
    return sections


def _is_encoded_message(chunk: bytes) -> bool:
    """True when `chunk` is a whole encoded AMQP message (a batch's data sections are)."""
    if len(chunk) < 3 or chunk[:2] != b"\x00S" or chunk[2] not in _ANY_SECTION:
        return False
    try:
        return all(isinstance(s, Described) and int(s.descriptor) in _ANY_SECTION for s in _sections(chunk))
    except Exception:
        return False


def decode_transfer(raw: bytes) -> list[Message]:
    """One transfer's payload -> its messages (several when the SDK sent a batch).

    The transfer's message-format (0x80013700 for a batch) is not exposed by proton's Python binding, so a
    batch is recognised by shape: every data section holds a whole encoded message (the outer message
    carries the first message's properties, nothing else of use).
    """
    sections = [s for s in _sections(raw) if isinstance(s, Described)]
    data = [bytes(s.value) for s in sections if int(s.descriptor) == _DATA_SECTION]
    is_batch = bool(data) and all(_is_encoded_message(d) for d in data)
    messages = []
    for chunk in data if is_batch else [raw]:
        message = Message()
        message.decode(chunk)
        messages.append(message)
    return messages


def _body_bytes(message: Message) -> bytes:
    body = message.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return bytes(body)


class AmqpTestBroker(Handler):
    """`start()` it, give the SDK `connection_string`, inspect `queue(name)`, then `stop()` it."""

    def __init__(
        self,
        *,
        lock_seconds: float = 60.0,
        max_delivery_count: int = 10,
        duplicate_window_seconds: float = 600.0,
        max_message_size: int = 256 * 1024,
    ) -> None:
        super().__init__()
        self.lock_seconds = lock_seconds
        self.max_delivery_count = max_delivery_count
        self.duplicate_window_seconds = duplicate_window_seconds
        self.max_message_size = max_message_size
        self.cbs_tokens: list[dict[str, Any]] = []
        self.management_operations: list[str] = []
        self._queues: dict[str, BrokerQueue] = {}
        self._lock = threading.RLock()
        self._seq = 0
        self._consumers: list[Any] = []  # our sender links, serving the SDK's receivers
        self._replies: list[tuple[Any, Message]] = []  # control replies waiting for credit
        self._connections: list[Any] = []
        self._container = Container(self)
        self._acceptor = self._container.acceptor("127.0.0.1", 0)
        self.port: int = self._acceptor._selectable.getsockname()[1]
        self._thread = threading.Thread(target=self._container.run, name=f"amqp-test-broker-{self.port}", daemon=True)
        self._stopping = 0

    # ------------------------------------------------------------------ lifecycle (test thread)

    @property
    def connection_string(self) -> str:
        """Dummy key: the broker accepts any token."""
        return (
            f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName=test;"
            "SharedAccessKey=dGVzdC1vbmx5;UseDevelopmentEmulator=true"
        )

    def start(self) -> AmqpTestBroker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        self._stopping = 1
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"AMQP test broker on port {self.port} did not stop within {timeout}s")

    # ------------------------------------------------------------------ inspection (any thread)

    def queue(self, name: str) -> BrokerQueue:
        with self._lock:
            return self._queues.setdefault(name, BrokerQueue(name))

    def enqueue(self, name: str, body: bytes, *, message_id: str | None = None, subject: str | None = None) -> None:
        """Put a message straight into a queue (receiver tests that do not go through a sender)."""
        with self._lock:
            self._store(self.queue(name), message_id, body, subject, {}, {})

    # ------------------------------------------------------------------ reactor thread: plumbing

    def on_reactor_init(self, event: Any) -> None:
        event.container.schedule(_TICK_SECONDS, self)

    def on_timer_task(self, event: Any) -> None:
        if self._stopping == 1:
            self._acceptor.close()
            for conn in self._connections:
                conn.close()
            self._stopping = 2
            event.container.schedule(0.05, self)
            return
        if self._stopping == 2:  # peers that did not answer the close: drop their sockets
            for conn in self._connections:
                if conn.transport is not None:
                    conn.transport.close_tail()
                    conn.transport.close_head()
            self._stopping = 3
            event.container.schedule(0.02, self)
            return
        if self._stopping == 3:
            event.container.stop()
            return
        with self._lock:
            self._expire_locks(time.time())
            self._pump()
        event.container.schedule(_TICK_SECONDS, self)

    def on_connection_bound(self, event: Any) -> None:
        sasl = event.transport.sasl()
        sasl.allow_insecure_mechs = True
        sasl.allowed_mechs("ANONYMOUS")

    def on_connection_remote_open(self, event: Any) -> None:
        if event.connection.state & Endpoint.LOCAL_UNINIT:
            event.connection.open()
            self._connections.append(event.connection)

    def on_session_remote_open(self, event: Any) -> None:
        if event.session.state & Endpoint.LOCAL_UNINIT:
            event.session.open()

    def on_link_remote_open(self, event: Any) -> None:
        link = event.link
        if not link.state & Endpoint.LOCAL_UNINIT:
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        if link.is_receiver:
            link.max_message_size = self.max_message_size
        link.open()
        if link.is_receiver:
            link.flow(_CREDIT)
        elif not self._is_control(link.source.address):
            with self._lock:
                self.queue(entity_name(link.source.address))
                self._consumers.append(link)

    def on_link_remote_close(self, event: Any) -> None:
        self._forget(event.link)
        event.link.close()

    def on_session_remote_close(self, event: Any) -> None:
        event.session.close()

    def on_connection_remote_close(self, event: Any) -> None:
        self._forget_connection(event.connection)
        event.connection.close()

    def on_transport_closed(self, event: Any) -> None:
        if event.connection is not None:
            self._forget_connection(event.connection)

    def on_transport_error(self, event: Any) -> None:
        """A client that goes away is normal here."""

    def _forget(self, link: Any) -> None:
        with self._lock:
            self._consumers = [lk for lk in self._consumers if lk != link]
            self._replies = [(lk, m) for lk, m in self._replies if lk != link]

    def _forget_connection(self, conn: Any) -> None:
        self._connections = [c for c in self._connections if c != conn]
        with self._lock:
            self._consumers = [lk for lk in self._consumers if lk.connection != conn]
            self._replies = [(lk, m) for lk, m in self._replies if lk.connection != conn]

    @staticmethod
    def _is_control(address: str | None) -> bool:
        return bool(address) and (address == "$cbs" or address.endswith("$management"))

    def on_link_flow(self, event: Any) -> None:
        with self._lock:
            self._pump()

    def on_delivery(self, event: Any) -> None:
        delivery = event.delivery
        link = delivery.link
        if link.is_receiver:
            if delivery.readable and not delivery.partial:
                raw = link.recv(delivery.pending)
                link.advance()
                self._on_transfer(link, delivery, raw)
        elif delivery.updated:
            self._on_settlement(delivery)

    # ------------------------------------------------------------------ incoming: control and queue sends

    def _on_transfer(self, link: Any, delivery: Any, raw: bytes) -> None:
        address = link.target.address
        if self._is_control(address):
            request = Message()
            request.decode(raw)
            self._answer_control(link, address, request)
        else:
            with self._lock:
                queue = self.queue(entity_name(address))
                messages = decode_transfer(raw)
                queue.transfers.append(len(messages))
                for message in messages:
                    self._accept(queue, message)
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        if link.credit < _CREDIT // 2:
            link.flow(_CREDIT - link.credit)

    def _answer_control(self, link: Any, address: str, request: Message) -> None:
        props = {str(k): v for k, v in (request.properties or {}).items()}
        operation = str(props.get("operation", ""))
        if address == "$cbs":
            with self._lock:
                self.cbs_tokens.append({"operation": operation, "type": props.get("type"), "name": props.get("name")})
            status = {"status-code": 200, "status-description": "OK"} if operation == "put-token" else {
                "status-code": 400, "status-description": f"unknown CBS operation {operation!r}"}
        else:
            with self._lock:
                self.management_operations.append(operation)
                status = self._management(entity_name(address.removesuffix("$management")), operation, request.body)
        reply = Message(correlation_id=request.id, properties=status, body={})
        reply_link = self._reply_link(link.connection, address)
        with self._lock:
            if reply_link is not None:
                self._replies.append((reply_link, reply))
            self._pump()

    def _management(self, queue_name: str, operation: str, body: Any) -> dict[str, Any]:
        """`update-disposition` (the SDK's fallback settlement); anything else is answered 501."""
        if operation != "com.microsoft:update-disposition":
            return {"statusCode": 501, "statusDescription": f"{operation} is not implemented by the test broker"}
        body = {str(k): v for k, v in (body or {}).items()}
        queue = self.queue(queue_name)
        found = [self._locked(queue, uuid.UUID(str(token)).bytes_le) for token in body.get("lock-tokens") or []]
        if not found or None in found:
            return {"statusCode": 410, "statusDescription": "the message lock was lost", "errorCondition": symbol(_LOCK_LOST)}
        for stored in found:
            self._settle(queue, stored, str(body.get("disposition-status")),
                         _text(body.get("deadletter-reason")), _text(body.get("deadletter-description")))
        return {"statusCode": 200, "statusDescription": "OK"}

    @staticmethod
    def _reply_link(conn: Any, address: str) -> Any:
        """The SDK's response link for a control address: our sender whose source is that address."""
        link = conn.link_head(_ACTIVE)
        while link is not None:
            if link.is_sender and link.source.address == address:
                return link
            link = link.next(_ACTIVE)
        return None

    def _accept(self, queue: BrokerQueue, message: Message) -> None:
        now = time.time()
        message_id = _text(message.id)
        window_start = now - self.duplicate_window_seconds
        queue.seen_ids = {k: t for k, t in queue.seen_ids.items() if t >= window_start}
        if message_id is not None and message_id in queue.seen_ids:
            queue.duplicates_dropped += 1
            return
        if message_id is not None:
            queue.seen_ids[message_id] = now
        annotations = {str(k): v for k, v in (message.annotations or {}).items()}
        properties = {str(k): v for k, v in (message.properties or {}).items()}
        self._store(queue, message_id, _body_bytes(message), message.subject, properties, annotations)

    def _store(self, queue: BrokerQueue, message_id, body, subject, properties, annotations) -> None:
        now = time.time()
        scheduled = annotations.get(_SCHEDULED)
        visible_at = max(now, _epoch_seconds(scheduled)) if scheduled is not None else now
        self._seq += 1
        queue.messages.append(StoredMessage(self._seq, message_id, body, subject, properties, annotations, now, visible_at))

    # ------------------------------------------------------------------ outgoing: peek-lock deliveries

    def _pump(self) -> None:
        """Send control replies and available messages while links have credit (lock held)."""
        waiting = []
        for link, reply in self._replies:
            if link.credit > 0 and link.state & _ACTIVE:
                link.send(reply)
                link.advance()
            else:
                waiting.append((link, reply))
        self._replies = waiting
        now = time.time()
        for link in self._consumers:
            if not (link.state & _ACTIVE and link.state & Endpoint.REMOTE_ACTIVE):
                continue
            queue = self.queue(entity_name(link.source.address))
            while link.credit > 0:
                message = next((m for m in queue.messages if m.lock_tag is None and m.visible_at <= now), None)
                if message is None:
                    break
                self._deliver(link, message, now)
            link.drained()  # a receiver asking to drain gets its unused credit back at once

    def _deliver(self, link: Any, stored: StoredMessage, now: float) -> None:
        tag = uuid.uuid4().bytes
        stored.lock_tag = tag
        stored.locked_until = now + self.lock_seconds
        annotations = {symbol(k): v for k, v in stored.annotations.items()}
        annotations[symbol("x-opt-enqueued-time")] = timestamp(int(stored.enqueued_at * 1000))
        annotations[symbol("x-opt-sequence-number")] = stored.seq
        annotations[symbol("x-opt-locked-until")] = timestamp(int(stored.locked_until * 1000))
        message = Message(
            id=stored.message_id,
            body=stored.body,
            subject=stored.subject,
            properties=dict(stored.application_properties),
            annotations=annotations,
            delivery_count=stored.deliveries,
            inferred=True,  # body as a data section, like Service Bus
        )
        stored.deliveries += 1
        delivery = link.delivery(tag)
        delivery.lock_tag = tag  # proton keeps attributes in the delivery's attachments
        link.send(message.encode())
        link.advance()

    def _on_settlement(self, delivery: Any) -> None:
        """The SDK settled one of our deliveries: apply it while the lock holds, else answer lock-lost."""
        tag = getattr(delivery, "lock_tag", None)
        outcome = delivery.remote_state
        with self._lock:
            queue = self.queue(entity_name(delivery.link.source.address))
            stored = self._locked(queue, tag)
            if stored is None:
                queue.stale_settlements += 1
                delivery.local.condition = Condition(_LOCK_LOST, "the message lock expired; the message may be delivered again")
                delivery.update(Delivery.REJECTED)
            else:
                condition = delivery.remote.condition
                info = {str(k): v for k, v in ((condition.info if condition else None) or {}).items()}
                self._settle(queue, stored, _OUTCOMES.get(outcome, "abandoned"),
                             _text(info.get("DeadLetterReason")),
                             _text(info.get("DeadLetterErrorDescription")) or (condition.description if condition else None),
                             counted=outcome != Delivery.RELEASED)
                delivery.update(outcome)
            delivery.settle()
            self._pump()

    def _locked(self, queue: BrokerQueue, tag: bytes | None) -> StoredMessage | None:
        """The message this lock tag still holds, or None when the lock expired or moved on."""
        now = time.time()
        return next((m for m in queue.messages if tag is not None and m.lock_tag == tag and m.locked_until > now), None)

    def _settle(self, queue: BrokerQueue, stored: StoredMessage, disposition: str, reason: str | None,
                description: str | None, *, counted: bool = True) -> None:
        if disposition == "completed":
            queue.messages.remove(stored)
            queue.completed.append(stored)
        elif disposition == "suspended":
            self._dead_letter(queue, stored, reason, description)
        else:
            if not counted:  # released without a delivery attempt (the SDK drains its prefetch on close)
                stored.deliveries -= 1
            self._release(queue, stored)

    def _release(self, queue: BrokerQueue, stored: StoredMessage) -> None:
        stored.lock_tag = None
        stored.locked_until = 0.0
        if stored.deliveries >= self.max_delivery_count:
            self._dead_letter(queue, stored, "MaxDeliveryCountExceeded", f"delivered {stored.deliveries} times")

    def _dead_letter(self, queue: BrokerQueue, stored: StoredMessage, reason: str | None, description: str | None) -> None:
        queue.messages.remove(stored)
        stored.lock_tag = None
        queue.dead_letters.append(DeadLettered(stored, reason, description))

    def _expire_locks(self, now: float) -> None:
        for queue in self._queues.values():
            for stored in [m for m in queue.messages if m.lock_tag is not None and m.locked_until <= now]:
                self._release(queue, stored)


def _epoch_seconds(value: Any) -> float:
    """An AMQP timestamp (ms since the epoch; proton may hand back a datetime) -> seconds."""
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value) / 1000.0
