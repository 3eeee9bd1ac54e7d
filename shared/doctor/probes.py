"""Reachability of the queue and the audit store, without changing either.

Queue: the embedded queue is opened and counted; on Service Bus the doctor attaches a receiver link (the
Data Receiver role; no receive is issued, so nothing is locked) and a sender link, asking it for an empty
batch (the Data Sender role): nothing is sent, received or settled.
Audit: one read of today's records. Both go through the adapters' own settings and error translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from shared.doctor.report import CheckResult, fail, ok, skip
from shared.errors import ConfigError, JanitorError

QUEUE = "queue reachable"
AUDIT = "audit store reachable"


async def probe_queue(env: Mapping[str, str]) -> CheckResult:
    from shared.queue import factory

    try:
        backend = factory.backend(env)
        if backend == "sqlite":
            queue = factory.open_sqlite(env)
            try:
                counts = queue.counts()
            finally:
                await queue.close()
            return ok(QUEUE, f"embedded queue {factory.sqlite_path(env)} ({_counts(counts)})")
        return await _probe_servicebus(env)
    except ConfigError as exc:
        return skip(QUEUE, f"not tried: setting {exc.setting} is wrong (see above)")
    except (JanitorError, OSError) as exc:
        return fail(QUEUE, str(exc), "check the queue settings and the identity's Service Bus roles (docs/deploy.md)")


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "empty"


async def _probe_servicebus(env: Mapping[str, str]) -> CheckResult:
    from shared.queue.servicebus_target import ServiceBusTarget, translate_error

    target = ServiceBusTarget.from_settings(env)
    client = target.open_client(retry_total=1, retry_backoff_max=2.0)
    doing = "receive messages"
    try:
        async with client:
            async with client.get_queue_receiver(target.queue_name):  # attach only: no receive, no lock
                pass
            doing = "send messages"
            async with client.get_queue_sender(target.queue_name) as sender:
                await sender.create_message_batch()
    except Exception as exc:  # the SDK's errors, translated into the project's wording
        error = translate_error(exc, target, doing)
        fix = "check SERVICEBUS__fullyQualifiedNamespace, SERVICEBUS_QUEUE_NAME and the identity's Service Bus roles"
        return fail(QUEUE, str(error), fix)
    return ok(QUEUE, f"{target.where}: receiver and sender links open")


async def probe_audit(env: Mapping[str, str]) -> CheckResult:
    from shared.audit import open_audit_log
    from shared.ports import AuditQuery

    try:
        log = open_audit_log(env)
    except ConfigError as exc:
        return skip(AUDIT, f"not tried: setting {exc.setting} is wrong (see above)")
    try:
        since = datetime.now(UTC) - timedelta(days=1)
        page = await log.query(AuditQuery(since=since), limit=1)
    except (JanitorError, OSError) as exc:
        return fail(AUDIT, str(exc), "check AUDIT_* settings and the identity's 'Storage Table Data Contributor' role")
    finally:
        await log.close()
    seen = "records since yesterday" if page.records else "no records since yesterday"
    return ok(AUDIT, f"{type(log).__name__} answered ({seen})")
