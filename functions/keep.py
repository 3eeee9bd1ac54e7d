"""GET/POST /api/keep/{token}: the owner's keep link (anonymous: the signed, expiring token is the credential).

GET shows the device and the Keep button and changes nothing; only the POST keeps it. Thin: all behaviour is
in shared.keep.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.errors import JanitorError, TransientError
from shared.keep import shared_keep_service
from shared.keep.page import HEADERS, refusal_page

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _page(status: int, html: str) -> func.HttpResponse:
    return func.HttpResponse(html, status_code=status, mimetype="text/html", charset="utf-8", headers=dict(HEADERS))


@bp.function_name("keep_link")
@bp.route(route="keep/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def keep_link(req: func.HttpRequest) -> func.HttpResponse:
    token = req.route_params.get("token", "")
    try:
        service = shared_keep_service()
        answer = await (service.keep(token) if req.method.upper() == "POST" else service.view(token))
    except TransientError as exc:
        log.warning("keep link: %s", exc)
        return _page(503, refusal_page(503, "Your choice could not be saved completely. Open the link again in a minute."))
    except JanitorError as exc:  # a setting or a permission: the administrator's to fix, said in the log
        log.error("keep link: %s", exc)
        return _page(503, refusal_page(503, "Keep links are not available right now. Try again later."))
    return _page(answer.status, answer.html)
