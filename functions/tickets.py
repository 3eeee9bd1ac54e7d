"""Ticket webhook: POST /api/tickets, GET /api/tickets/{id}, and the callback outbox timer. Thin adapters.

Function key (auth level FUNCTION) plus the X-Janitor-Signature HMAC; all behaviour is in shared.tickets.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import azure.functions as func

from shared.tickets.api import ApiResponse, get_ticket, post_ticket
from shared.tickets.service import shared_service

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _response(answer: ApiResponse) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(answer.body, default=str), status_code=answer.status, mimetype="application/json", headers=answer.headers
    )


def _base_url(req: func.HttpRequest) -> str | None:
    parts = urlsplit(req.url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


@bp.function_name("ticket_intake")
@bp.route(route="tickets", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def ticket_intake(req: func.HttpRequest) -> func.HttpResponse:
    service = shared_service()
    answer = await post_ticket(
        req.get_body() or b"",
        dict(req.headers),
        dict(req.params),
        intake=service.intake,
        secret=service.secret,
        base_url=_base_url(req),
    )
    return _response(answer)


@bp.function_name("ticket_status")
@bp.route(route="tickets/{request_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def ticket_status(req: func.HttpRequest) -> func.HttpResponse:
    return _response(await get_ticket(req.route_params.get("request_id", ""), audit=shared_service().audit))


@bp.function_name("ticket_callbacks")
@bp.timer_trigger(schedule="%TICKET_CALLBACK_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def ticket_callbacks(timer: func.TimerRequest) -> None:
    """Deliver finished ticket results to their (allowlisted) callback URLs; failed ones retry next time."""
    deliveries = await shared_service().deliver_callbacks()
    failed = [d for d in deliveries if not d.ok]
    if deliveries:
        log.info("ticket callbacks: %d delivered, %d failed", len(deliveries) - len(failed), len(failed))
