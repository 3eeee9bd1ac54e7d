"""Notification mail: what happened to a device, why, and how to undo it; one per device or a digest.

`render_notice` (pure) writes one device's message; `render_digest` (pure) folds many into one message
per recipient; `recipients` picks who gets it; `send_notice` sends through the Graph port.
"""

from shared.notify.messages import Notice, recipients, render_digest, render_notice
from shared.notify.send import send_digests, send_notice

__all__ = ["Notice", "recipients", "render_digest", "render_notice", "send_digests", "send_notice"]
