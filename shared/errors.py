"""Error types: one hierarchy, two families. Transient errors are worth another delivery later (the message
is abandoned); permanent ones are not (a terminal `failed` decision, the message dead-lettered).

A normal outcome (a gate saying no) is a value, never an exception. Microsoft Graph failures are classified
once, where the answer is read (shared/graph/failures.py), into the Graph classes below; each is also a
TransientError or a PermanentError, so callers decide retry or not from the class alone (azure-core's
HttpResponseError family is the model).
"""

from __future__ import annotations


class JanitorError(Exception):
    """Base class for every error the project raises on purpose."""

    @property
    def transient(self) -> bool:
        """Worth trying again later (the class says so: TransientError and its subclasses)."""
        return isinstance(self, TransientError)


class ConfigError(JanitorError):
    """A setting is missing or malformed. The message names the setting and says what to fix."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class TransientError(JanitorError):
    """Worth retrying later: throttling, 5xx, a store that is down for a while."""


class PermanentError(JanitorError):
    """Retrying will not help: bad input, missing permission, unknown command version."""


class GraphError(JanitorError):
    """A Microsoft Graph call failed. Carries Graph's request-id so support can trace it.

    Raised as one of the subclasses below wherever the failure is known; the base class itself is
    permanent (a refusal of ours, e.g. a nextLink to another host).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message  # the sentence alone, without the status/code/request-id suffix
        self.status = status
        self.code = code
        self.request_id = request_id
        detail = ", ".join(
            part
            for part in (
                f"status {status}" if status is not None else "",
                f"code {code}" if code else "",
                f"request-id {request_id}" if request_id else "",
            )
            if part
        )
        super().__init__(f"{message} ({detail})" if detail else message)


class GraphThrottled(GraphError, TransientError):
    """429 that outlived the gateway's retry budget: try again later."""


class GraphUnavailable(GraphError, TransientError):
    """5xx or 408, Graph unreachable, an answer that could not be read, a $batch left unanswered."""


class GraphPermissionDenied(GraphError, PermanentError):
    """401/403: the token is not accepted, or the app identity lacks a permission (the message names it)."""


class GraphBadRequest(GraphError, PermanentError):
    """400 and the other 4xx Graph refuses for good, among them its non-Windows refusal (400 Request_BadRequest:
    an application may change only extensionAttributes of a non-Windows device)."""


class GraphNotFound(GraphError, PermanentError):
    """404: the object does not exist (a delete that finds it gone is a success)."""


#: The earlier name of GraphPermissionDenied.
GraphPermissionError = GraphPermissionDenied


class AuditUnavailable(TransientError):
    """The audit store cannot be written: nothing may be written to Graph until it can."""


class InvalidCommand(PermanentError):
    """A queue message that is not a valid RemediationCommand (dead-lettered, never acted on)."""


class QueueUnavailable(TransientError):
    """The queue could not be reached or written within the retry budget. Re-sending is safe (duplicates drop)."""


class MessageLockLost(TransientError):
    """A settle (complete/abandon/dead-letter) came after the message's peek-lock expired: nothing was changed.

    The message is, or will be, delivered again; the redelivery must find the work already recorded.
    """
