"""Ticketing webhook: signed intake from ServiceNow, Jira or any JSON sender, status, and result callbacks.

    from shared.tickets import TicketIntake, post_ticket, get_ticket, ticket_status, sign, verify

A ticket becomes one RemediationCommand on the same queue the nightly scan uses, so the worker's gates
apply unchanged. See docs/tickets.md for the payloads, the signature and the settings.
"""

from __future__ import annotations

from shared.tickets.api import ApiResponse, get_ticket, post_ticket
from shared.tickets.callbacks import CallbackRefused, Delivery, check_callback_url, deliver, parse_allowlist
from shared.tickets.intake import NO_OBJECT_ID, IntakeResult, TicketConfig, TicketIntake, request_id, ticket_device_ref
from shared.tickets.payloads import ACTIONS, SOURCES, PayloadError, PayloadTooLarge, TicketRequest
from shared.tickets.results import deliver_pending
from shared.tickets.signature import HEADER, SignatureError, sign, verify, webhook_secret
from shared.tickets.status import status_from_records, ticket_status

__all__ = [
    "ACTIONS",
    "HEADER",
    "NO_OBJECT_ID",
    "SOURCES",
    "ApiResponse",
    "CallbackRefused",
    "Delivery",
    "IntakeResult",
    "PayloadError",
    "PayloadTooLarge",
    "SignatureError",
    "TicketConfig",
    "TicketIntake",
    "TicketRequest",
    "check_callback_url",
    "deliver",
    "deliver_pending",
    "get_ticket",
    "parse_allowlist",
    "post_ticket",
    "request_id",
    "sign",
    "status_from_records",
    "ticket_device_ref",
    "ticket_status",
    "verify",
    "webhook_secret",
]
