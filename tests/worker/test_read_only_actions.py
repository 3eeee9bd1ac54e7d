"""Ticket read-only actions: the join-scope check and the diagnosis are recorded as the decision's data."""

from __future__ import annotations

from shared.commands import TicketRef, encode
from shared.ports import Owner
from shared.scope.evaluate import SELECTED
from tests.worker.conftest import decisions_of, records_of
from tests.worker.fakes import FakeGraph, command, device

GROUP = "0b0a5c1e-0000-4000-8000-000000000009"


def _ticket_command(dev, action: str, **ticket):
    ref = TicketRef(source="jira", ticket_id="IT-7", requested_by="helpdesk@contoso.test", **ticket)
    return command(dev, device_class="ticket", action=action, trigger="ticket", snapshot=None, ticket=ref)


async def test_scope_check_for_the_device_owner(make_worker, audit):
    dev = device("sc1")
    graph = FakeGraph(dev)
    graph.owners["sc1"] = [Owner("u9", "Bo", "bo@contoso.test", "bo@contoso.test")]
    graph.users["u9"] = graph.owners["sc1"][0]
    graph.policy = {"userDeviceQuota": 3, "azureADJoin": {"allowedToJoin": {"@odata.type": SELECTED, "users": [],
                                                                              "groups": [GROUP]}}}
    cmd = _ticket_command(dev, "scope_check")
    handled = await make_worker(graph).handle(encode(cmd), message_id=cmd.command_id)
    assert handled.decision == "acted" and "not allowed" in handled.reason
    [decision] = await decisions_of(audit, cmd.command_id)
    assert decision.entry.data["scope"]["scope"] == "selected" and decision.entry.data["scope"]["allowed"] is False
    [ticket] = [r for r in await records_of(audit, cmd.command_id) if r.entry.kind == "ticket"]
    assert ticket.entry.ticket == "IT-7" and ticket.entry.data == {"phase": "result", "in_decision": ["scope"]}  # kept once
    assert graph.writes == []


async def test_scope_check_runs_in_report_mode_too(make_worker, audit):
    from shared.policy import Policy

    dev = device("sc2")
    graph = FakeGraph(dev)
    graph.users["u1"] = Owner("u1", "Al", "al@contoso.test", "al@contoso.test")
    graph.policy = {"azureADJoin": {"allowedToJoin": {"@odata.type": "#microsoft.graph.allDeviceRegistrationMembership"}}}
    cmd = _ticket_command(dev, "scope_check", user="al@contoso.test")
    handled = await make_worker(graph, Policy()).handle(encode(cmd), message_id=cmd.command_id)
    assert handled.decision == "acted" and "allowed for al@contoso.test" in handled.reason
