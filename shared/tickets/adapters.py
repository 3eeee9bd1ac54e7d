"""Jira Cloud and ServiceNow payloads mapped onto the generic ticket schema, with the mapping in settings.

A mapping gives, for each generic field, where to find it in the incoming JSON: a dotted path
("issue.fields.customfield_10050"), a list of paths (the first non-empty one wins), or an object
{"path": ..., "default": "..."} whose default applies when the paths find nothing. TICKET_JIRA_FIELDS and
TICKET_SERVICENOW_FIELDS (JSON objects) override the defaults below field by field.

Values are flattened the way these systems send them: Jira select fields and users are objects
({"value": ...}, {"emailAddress": ...}), ServiceNow reference fields are {"value", "display_value"}, and
Jira Cloud descriptions are Atlassian Document Format; all become plain text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared import settings
from shared.errors import ConfigError
from shared.jsonshape import is_array, is_dict
from shared.tickets.payloads import SOURCES, PayloadError, TicketRequest, validate

GENERIC_FIELDS = ("ticket_id", "device", "action", "requested_by", "user", "dsregcmd", "callback_url")

DEFAULT_JIRA_FIELDS: dict[str, Any] = {
    "ticket_id": "issue.key",
    "device": "issue.fields.customfield_10050",
    "action": {"path": "issue.fields.customfield_10051", "default": "diagnose"},
    "requested_by": [
        "issue.fields.reporter.emailAddress",
        "user.emailAddress",
        "issue.fields.reporter.accountId",
        "user.accountId",
    ],
    "user": "issue.fields.customfield_10052",
    "dsregcmd": "issue.fields.customfield_10053",
    "callback_url": None,
}
DEFAULT_SERVICENOW_FIELDS: dict[str, Any] = {
    "ticket_id": ["number", "sys_id"],
    "device": ["u_device", "cmdb_ci"],
    "action": {"path": "u_janitor_action", "default": "diagnose"},
    "requested_by": ["opened_by", "sys_created_by", "caller_id"],
    "user": ["u_affected_user", "caller_id"],
    "dsregcmd": "u_dsregcmd",
    "callback_url": "u_callback_url",
}
_SETTING = {"jira": "TICKET_JIRA_FIELDS", "servicenow": "TICKET_SERVICENOW_FIELDS"}
_DEFAULTS = {"jira": DEFAULT_JIRA_FIELDS, "servicenow": DEFAULT_SERVICENOW_FIELDS}
#: Keys tried, in order, to turn an object into text (ServiceNow references, Jira selects and users).
_OBJECT_TEXT_KEYS = ("display_value", "value", "emailAddress", "name", "key", "displayName")


def field_map(source: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effective mapping for jira/servicenow: defaults overridden by the setting; ConfigError if malformed."""
    mapping = dict(_DEFAULTS[source])
    name = _SETTING[source]
    raw = settings.get(name, env)
    if raw:
        try:
            override = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(name, f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not is_dict(override):
            raise ConfigError(name, 'must be a JSON object such as {"device": "issue.fields.customfield_10050"}')
        for key, spec in override.items():
            if key not in GENERIC_FIELDS:
                raise ConfigError(name, f"unknown field {key!r}; map any of {', '.join(GENERIC_FIELDS)}")
            _check_spec(name, key, spec)
        mapping.update(override)
    return mapping


def _check_spec(setting: str, key: str, spec: Any) -> None:
    if spec is None or isinstance(spec, str):
        return
    if is_array(spec) and all(isinstance(p, str) for p in spec):
        return
    if is_dict(spec) and set(spec) <= {"path", "default"}:
        _check_spec(setting, key, spec.get("path"))
        if spec.get("default") is None or isinstance(spec.get("default"), str):
            return
    raise ConfigError(setting, f'{key}: use a path string, a list of paths, or {{"path": ..., "default": "..."}}')


def resolve(data: Any, path: str) -> Any:
    """The value at a dotted path ("issue.fields.reporter.emailAddress"; digits index lists), or None."""
    node = data
    for part in path.split("."):
        if is_dict(node):
            node = node.get(part)
        elif is_array(node) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def adf_text(node: Any) -> str:
    """Plain text of an Atlassian Document Format tree (block nodes end with a line break)."""
    if is_array(node):
        return "".join(adf_text(n) for n in node)
    if not is_dict(node):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    inner = adf_text(node.get("content", []))
    return inner + "\n" if node.get("type") in ("paragraph", "codeBlock", "heading", "listItem") else inner


def flatten(value: Any) -> Any:
    """Objects these systems use for one value become that value's text; other values pass through."""
    if is_dict(value):
        if value.get("type") == "doc" and "content" in value:
            return adf_text(value).strip("\n")
        for key in _OBJECT_TEXT_KEYS:
            if value.get(key) not in (None, ""):
                return flatten(value[key])
    if is_array(value) and len(value) == 1:
        return flatten(value[0])
    return value


def _lookup(data: Any, spec: Any) -> Any:
    if spec is None:
        return None
    default = None
    if is_dict(spec):
        default = spec.get("default")
        spec = spec.get("path")
    paths = [spec] if isinstance(spec, str) else list(spec or ())
    for path in paths:
        value = flatten(resolve(data, path))
        if value not in (None, "", [], {}):
            return value
    return default


def map_payload(data: Any, mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Generic-schema data from a source payload, field by field through the mapping."""
    return {name: _lookup(data, mapping.get(name)) for name in GENERIC_FIELDS}


def detect_source(data: Any) -> str:
    """Which system sent the payload, when the caller did not say (`?source=`)."""
    if is_dict(data):
        if "webhookEvent" in data and is_dict(data.get("issue")):
            return "jira"
        if "ticket_id" in data:
            return "generic"
        result = data.get("result")
        body = result if is_dict(result) else data
        if "number" in body or "sys_id" in body:
            return "servicenow"
    raise PayloadError(["source: cannot tell which ticketing system sent this; add ?source=generic, jira or servicenow"])


def to_request(data: Any, *, source: str | None, env: Mapping[str, str] | None = None) -> TicketRequest:
    """Validate a decoded body from any supported source into a TicketRequest (PayloadError when bad)."""
    if source is not None and source not in SOURCES:
        raise PayloadError([f"source: must be one of {', '.join(SOURCES)}, not {source!r}"])
    if not is_dict(data):
        raise PayloadError(["body: must be a JSON object"])
    source = source or detect_source(data)
    if source == "generic":
        return validate(data, source=source)
    if source == "servicenow" and is_dict(data.get("result")):
        data = data["result"]  # the Table API answer shape, when an outbound message forwards a record as-is
    mapped = map_payload(data, field_map(source, env))
    try:
        return validate(mapped, source=source)
    except PayloadError as exc:
        paths = field_map(source, env)
        raise PayloadError([_explain(p, paths, source) for p in exc.problems]) from None


def _explain(problem: str, mapping: Mapping[str, Any], source: str) -> str:
    """'device: is required' -> names where the adapter looked, so the sender can fix the mapping or the ticket."""
    field = problem.split(":", 1)[0].split(".", 1)[0]
    spec = mapping.get(field)
    if spec is None:
        return problem
    where = spec.get("path") if is_dict(spec) else spec
    paths = [where] if isinstance(where, str) else list(where or ())
    return f"{problem} (looked in {', '.join(paths)} of the {source} payload; mapping setting {_SETTING[source]})"
