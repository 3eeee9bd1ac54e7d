"""Payload schemas: the generic one, and the Jira / ServiceNow adapters with their mapping in settings."""

from __future__ import annotations

import json

import pytest

from shared.errors import ConfigError
from shared.tickets import PayloadError
from shared.tickets.adapters import adf_text, detect_source, field_map, to_request
from tests.diagnosis.fakes import fixture
from tests.tickets.helpers import payload, sample


def test_generic_payload_minimal_and_full() -> None:
    request = to_request(payload(), source=None)
    assert (request.source, request.ticket_id, request.device.value, request.device.by, request.action) == (
        "generic",
        "INC-1001",
        "DESKTOP-1",
        "any",
        "diagnose",
    )
    full = to_request(
        payload(
            device={"deviceId": "{4B1D9C8E-2F6A-4C3B-9E71-0D5A8F2C6B13}"},
            action="Disable",
            user="ana@contoso.com",
            dsregcmd=fixture("win11_entra_joined_healthy.txt"),
            callback_url="https://hooks.example.com/x",
            extra={"ignored": True},
        ),
        source="generic",
    )
    assert full.device.by == "deviceId" and full.device.value == "4B1D9C8E-2F6A-4C3B-9E71-0D5A8F2C6B13"
    assert full.action == "disable" and full.user == "ana@contoso.com" and full.dsregcmd is not None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "body: must be a JSON object"),
        (payload(ticket_id=None), "ticket_id: is required"),
        (payload(ticket_id="  "), "ticket_id: is required"),
        (payload(ticket_id=True), "ticket_id: must be a string"),
        (payload(ticket_id="x" * 129), "ticket_id: is 129 characters"),
        (payload(ticket_id="INC\n1"), "ticket_id: must not contain control characters"),
        (payload(device=None), "device: is required"),
        (payload(device={"name": "a", "id": "b"}), 'device: give exactly one of "name", "id" or "deviceId"'),
        (payload(device={"id": "not-a-guid"}), "device.id: must be a GUID"),
        (payload(device=["DESKTOP-1", "x"]), "device: must be a string, not a list"),
        (payload(action="wipe"), "action: must be one of diagnose, scope_check, notify, disable, delete"),
        (payload(requested_by=None), "requested_by: is required"),
        (payload(dsregcmd="hello"), "dsregcmd: not dsregcmd /status output"),
        (payload(dsregcmd=["x"]), "dsregcmd: must be the text"),
        (payload(dsregcmd="AzureAdJoined : YES\n" + "x" * 70_000), "dsregcmd: is 70,020 characters"),
        (payload(user=".."), "user: must be the user's object id or user principal name"),  # reached /registeredDevices
        (payload(user="ana@contoso.com/../x"), "user: must be the user's object id or user principal name"),
        (payload(ticket_id="INC-\u31641001"), "ticket_id: must not contain"),  # Hangul filler: accepted before
        (payload(requested_by="help\u00a0desk@contoso.com"), "requested_by: must not contain"),  # no-break space
        (payload(requested_by="helpdesk\u2800@contoso.com"), "requested_by: must not contain"),  # Braille blank
        (payload(ticket_id="INC-1" + "\u0301" * 12), "ticket_id: must not contain"),  # a run of combining marks
    ],
)
def test_generic_payload_problems_name_the_field(body: object, problem: str) -> None:
    with pytest.raises(PayloadError) as info:
        to_request(body, source="generic")
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PayloadError) as info:
        to_request({"device": 5.5, "action": "nuke"}, source="generic")
    assert [p.split(":")[0] for p in info.value.problems] == ["ticket_id", "device", "action", "requested_by"]


def test_jira_issue_webhook_with_default_mapping() -> None:
    data = sample("jira_issue_created.json")
    data["issue"]["fields"]["customfield_10053"]["content"][0]["content"][0]["text"] = fixture("win11_prt_missing.txt")
    assert detect_source(data) == "jira"
    request = to_request(data, source=None)
    assert request.source == "jira" and request.ticket_id == "IT-4711"
    assert request.device.value == "DESKTOP-PRT0001" and request.action == "diagnose"
    assert request.requested_by == "megan.bowen@contoso.com" and request.user == "megan.bowen@contoso.com"
    assert request.dsregcmd is not None and "AcquirePrtDiagnostics : PRESENT" in request.dsregcmd


def test_jira_action_defaults_to_diagnose_and_mapping_comes_from_settings() -> None:
    data = sample("jira_issue_created.json")
    del data["issue"]["fields"]["customfield_10051"]
    data["issue"]["fields"].pop("customfield_10053")
    data["issue"]["fields"]["customfield_20000"] = {"value": "scope_check"}
    assert to_request(data, source="jira").action == "diagnose"
    env = {"TICKET_JIRA_FIELDS": json.dumps({"action": "issue.fields.customfield_20000", "device": ["issue.fields.labels.0"]})}
    request = to_request(data, source="jira", env=env)
    assert request.action == "scope_check" and request.device.value == "device"


def test_jira_missing_device_says_where_it_looked() -> None:
    data = sample("jira_issue_created.json")
    del data["issue"]["fields"]["customfield_10050"]
    del data["issue"]["fields"]["customfield_10053"]
    with pytest.raises(PayloadError) as info:
        to_request(data, source="jira")
    assert info.value.problems == [
        "device: is required (looked in issue.fields.customfield_10050 of the jira payload; mapping setting TICKET_JIRA_FIELDS)"
    ]


def test_servicenow_outbound_message_and_table_api_shape() -> None:
    data = sample("servicenow_incident.json")
    data["u_dsregcmd"] = fixture("win11_device_deleted.txt")
    assert detect_source(data) == "servicenow"
    request = to_request(data, source=None)
    assert (request.ticket_id, request.device.value, request.action) == ("INC0010023", "DESKTOP-GONE007", "diagnose")
    assert request.requested_by == "helpdesk@contoso.com"  # display_value of the reference field
    assert request.user == "alex.wilber@contoso.com"
    assert request.callback_url == "https://hooks.example.com/servicenow/result"
    wrapped = to_request({"result": data}, source="servicenow")
    assert wrapped.ticket_id == "INC0010023"


def test_adf_text_keeps_code_block_lines() -> None:
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [{"type": "text", "text": "a"}, {"type": "hardBreak"}, {"type": "text", "text": "b"}],
            },
            {"type": "codeBlock", "content": [{"type": "text", "text": "x : 1\ny : 2"}]},
        ],
    }
    assert adf_text(doc) == "a\nb\nx : 1\ny : 2\n"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"colour": "issue.key"}', "unknown field 'colour'"),
        ('{"device": 5}', "use a path string"),
        ('{"action": {"path": "x", "default": 1}}', "use a path string"),
    ],
)
def test_bad_mapping_settings_name_the_setting(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match="TICKET_SERVICENOW_FIELDS") as info:
        field_map("servicenow", {"TICKET_SERVICENOW_FIELDS": value})
    assert message in str(info.value)


def test_source_detection_and_explicit_source() -> None:
    with pytest.raises(PayloadError, match=r"\?source="):
        detect_source({"hello": "world"})
    with pytest.raises(PayloadError, match="source: must be one of"):
        to_request(payload(), source="zendesk")


def test_identifiers_keep_ordinary_text() -> None:
    """What the look-alike filter lets through: spaces (U+0020), accents, a few stacked marks, non-Latin scripts."""
    kept = [("INC 42", "Ana Lopez"), ("IT-4711", "Jos\u00e9 N\u00fa\u00f1ez"), ("T-1\u0301\u0302", "\u5c71\u7530")]
    for ticket_id, requested_by in kept:
        body = payload(ticket_id=ticket_id, requested_by=requested_by, user="9de5069c-5afe-4c2a-8a33-2f0a7e3d1b11")
        request = to_request(body, source="generic")
        assert (request.ticket_id, request.requested_by) == (ticket_id, requested_by)
