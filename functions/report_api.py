"""GET /api/report: the HTML review report over the audit log (function key required). Thin: all logic is shared."""

from __future__ import annotations

import azure.functions as func

from shared import bootstrap
from shared.audit.http import answer_report

bp = func.Blueprint()


@bp.route(route="report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def audit_report(req: func.HttpRequest) -> func.HttpResponse:
    answer = await answer_report(dict(req.params), bootstrap.shared_audit_log)
    return func.HttpResponse(answer.body, status_code=answer.status, mimetype=answer.mimetype, headers=answer.headers)
