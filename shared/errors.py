"""Error types. Transient errors are retried (the message is abandoned); permanent ones dead-letter.

A normal outcome (a gate saying no) is a value, never an exception.
"""

from __future__ import annotations


class JanitorError(Exception):
    """Base class for every error the project raises on purpose."""


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
    """A Microsoft Graph call failed. Carries Graph's request-id so support can trace it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        transient: bool = False,
    ) -> None:
        self.message = message  # the sentence alone, without the status/code/request-id suffix
        self.status = status
        self.code = code
        self.request_id = request_id
        self.transient = transient
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


class GraphNotFound(GraphError):
    """404: the object does not exist (a delete that finds it gone is a success)."""


class GraphPermissionError(GraphError):
    """403: the app identity lacks a Graph application permission; the message names it."""


class GraphThrottled(GraphError):
    """429/503/504 that outlived the retry budget."""


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
