"""What a ticket asks for, validated: the generic JSON schema every adapter maps into.

Generic payload (unknown fields are ignored):

    {"ticket_id": "INC-42", "device": "DESKTOP-1" | {"name"|"id"|"deviceId": "..."},
     "action": "diagnose" | "scope_check" | "notify" | "disable" | "delete" | "reenable" | "restore",
     "requested_by": "ana@contoso.com",
     "user": "optional UPN or object id", "dsregcmd": "optional dsregcmd /status text",
     "callback_url": "optional https URL on an allowlisted host"}

Every problem is collected and reported at once, each naming the field and what to fix.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

import msgspec

from shared.actions import TICKET_ACTIONS, Action
from shared.diagnosis import DsregcmdParseError, parse_dsregcmd
from shared.errors import JanitorError
from shared.graph.paths import is_user_key
from shared.jsonshape import is_dict

#: What a ticket may ask for: the action table's ticket actions (shared/actions.py), in its order.
ACTIONS: tuple[str, ...] = tuple(action.value for action in Action if action in TICKET_ACTIONS)
SOURCES = ("generic", "jira", "servicenow")
MAX_BODY_BYTES = 256 * 1024
MAX_DSREGCMD_CHARS = 64 * 1024  # real output is 5-20 KB; the command must fit a 256 KB queue message
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 256
MAX_JSON_DEPTH = 64  # real Jira/ServiceNow bodies nest a dozen levels; deeper is an attack on the recursion limit
_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")
#: Unicode categories a one-line identifier must not contain: controls, format characters (bidi overrides,
#: zero-width spaces), line/paragraph separators and lone surrogates (which cannot even be stored as UTF-8).
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: Letters and marks that render as nothing (Hangul fillers, Braille blank, variation selectors, the combining
#: grapheme joiner, Khmer inherent vowels): an identifier holding one looks like another identifier.
_BLANK = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
#: Longest run of combining marks an identifier may hold (stacked tone and vowel marks need 2 or 3).
MAX_COMBINING_RUN = 3


class PayloadError(JanitorError):
    """The payload cannot be accepted (HTTP 400). `problems` lists each field and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class PayloadTooLarge(JanitorError):
    """The body is over the size limit (HTTP 413)."""


class DeviceRef(msgspec.Struct, frozen=True):
    """The device as the ticket named it. `by` says how: any (name, id or deviceId), name, id, deviceId."""

    value: str
    by: Literal["any", "name", "id", "deviceId"] = "any"


class TicketRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated ticket request, whatever system it came from."""

    source: str
    ticket_id: str
    device: DeviceRef
    action: str
    requested_by: str
    user: str | None = None
    dsregcmd: str | None = None
    callback_url: str | None = None


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value.strip()))


def _text(
    problems: list[str], name: str, value: Any, *, required: bool, limit: int = MAX_TEXT_CHARS, identifier: bool = False
) -> str | None:
    """A short single-line string field (numbers are accepted as their text); `identifier`: no look-alikes either."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(f"{name}: is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.append(f"{name}: must be a string, not {_kind(value)}")
        return None
    text = str(value).strip()
    if len(text) > limit:
        problems.append(f"{name}: is {len(text)} characters; at most {limit}")
        return None
    bad = _first_invisible(text) or (_first_lookalike(text) if identifier else None)
    if bad is not None:
        position, char = bad
        problems.append(
            f"{name}: must not contain control characters, line breaks or invisible/direction-changing characters"
            f"{', blank letters, spaces other than U+0020 or runs of combining marks' if identifier else ''}"
            f" (U+{ord(char):04X} at character {position + 1})"
        )
        return None
    return text


def _first_invisible(text: str) -> tuple[int, str] | None:
    """Where the first character an identifier must not contain is, and which; None when there is none."""
    for position, char in enumerate(text):
        if unicodedata.category(char) in _INVISIBLE:
            return position, char
    return None


def _first_lookalike(text: str) -> tuple[int, str] | None:
    """Where an identifier first holds what makes it look like another one: a blank letter, a space that is not
    U+0020 (no-break, ideographic, ...), or more than MAX_COMBINING_RUN combining marks in a row."""
    run = 0
    for position, char in enumerate(text):
        category = unicodedata.category(char)
        run = run + 1 if category in ("Mn", "Me") else 0
        if char in _BLANK or (category == "Zs" and char != " ") or run > MAX_COMBINING_RUN:
            return position, char
    return None


def _kind(value: object) -> str:
    kinds: dict[type[Any], str] = {dict: "an object", list: "a list", bool: "true/false", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _device(problems: list[str], value: Any) -> DeviceRef | None:
    if is_dict(value):
        given = [(k, value[k]) for k in ("name", "id", "deviceId") if value.get(k) not in (None, "")]
        if len(given) != 1:
            problems.append('device: give exactly one of "name", "id" or "deviceId"')
            return None
        by, raw = given[0]
        text = _text(problems, f"device.{by}", raw, required=True)
        if text is None:
            return None
        if by != "name" and not is_guid(text):
            problems.append(f"device.{by}: must be a GUID such as 9de5069c-5afe-4c2a-8a33-2f0a7e3d1b11, not {text!r}")
            return None
        return DeviceRef(text.strip("{}") if by != "name" else text, by)  # type: ignore[arg-type]
    text = _text(problems, "device", value, required=True)
    return DeviceRef(text) if text is not None else None


def _dsregcmd(problems: list[str], value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(f"dsregcmd: must be the text of `dsregcmd /status`, not {_kind(value)}")
        return None
    if any("\ud800" <= char <= "\udfff" for char in value):
        problems.append("dsregcmd: contains an unpaired UTF-16 surrogate (\\ud800-\\udfff escape): not text a device printed")
        return None
    if len(value) > MAX_DSREGCMD_CHARS:
        problems.append(
            f"dsregcmd: is {len(value):,} characters; dsregcmd /status output is far smaller (limit {MAX_DSREGCMD_CHARS:,})"
        )
        return None
    try:
        parse_dsregcmd(value)
    except DsregcmdParseError as exc:
        problems.append(f"dsregcmd: {exc}")
        return None
    return value


def validate(data: Any, *, source: str) -> TicketRequest:
    """A TicketRequest from generic-schema data; PayloadError listing every problem otherwise."""
    if not is_dict(data):
        raise PayloadError([f"body: must be a JSON object, not {_kind(data)}"])
    problems: list[str] = []
    ticket_id = _text(problems, "ticket_id", data.get("ticket_id"), required=True, limit=MAX_ID_CHARS, identifier=True)
    device = _device(problems, data.get("device"))
    action_raw = data.get("action")
    action = _text(problems, "action", action_raw, required=True)
    if action is not None and action.lower() not in ACTIONS:
        problems.append(f"action: must be one of {', '.join(ACTIONS)}, not {action!r}")
        action = None
    requested_by = _text(problems, "requested_by", data.get("requested_by"), required=True, identifier=True)
    user = _text(problems, "user", data.get("user"), required=False)
    if user is not None and not is_user_key(user):
        problems.append(f"user: must be the user's object id or user principal name (name@domain), not {user!r}")
        user = None
    dsregcmd = _dsregcmd(problems, data.get("dsregcmd"))
    callback_url = _text(problems, "callback_url", data.get("callback_url"), required=False, limit=2048)
    if problems:
        raise PayloadError(problems)
    assert ticket_id and device and action and requested_by
    return TicketRequest(
        source=source,
        ticket_id=ticket_id,
        device=device,
        action=action.lower(),
        requested_by=requested_by,
        user=user,
        dsregcmd=dsregcmd,
        callback_url=callback_url,
    )
