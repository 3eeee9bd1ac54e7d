"""Fuzzing the ticket webhook (POST /api/tickets, as the Functions adapter answers it) with hypothesis.

0 accepted forgeries, 0 5xx, every rejection a clear 4xx, nothing queued for a rejected request. The
examples pinned with @example are the inputs that used to break it (each a 500 before it was fixed).
Longer runs: `python bench/fuzz.py --json`.
"""

from __future__ import annotations

import asyncio
import json
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.tickets import ACTIONS
from tests.fuzz.probes import probe_device_name, probe_forgery, probe_hostile_body, probe_replay
from tests.fuzz.strategies import WINDOW, forgeries, hostile_bodies, tricky_names, valid_bodies

CI = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@CI
@given(body=valid_bodies(), data=st.data())
def test_no_forged_or_replayed_signature_is_accepted(webhook, body: bytes, data: st.DataObject) -> None:
    runner, rig = webhook
    runner.run(probe_forgery(rig, body, data.draw(forgeries(body), label="header")))


@CI
@given(body=valid_bodies(), offset=st.integers(-WINDOW - 3, WINDOW + 3) | st.integers(-(10**9), 10**9))
def test_a_replay_is_the_same_request_inside_the_window_and_refused_outside(webhook, body: bytes, offset: int) -> None:
    runner, rig = webhook
    runner.run(probe_replay(rig, body, offset))


BIG_NUMBER = b'{"ticket_id":"INC-1","device":"DESKTOP-1","action":"diagnose","requested_by":"x","notes":' + b"9" * 5000 + b"}"
LONE_SURROGATE = json.dumps({"ticket_id": "@@", "device": "DESKTOP-1", "action": "diagnose", "requested_by": "x"}).replace(
    '"@@"', '"INC-\\ud800"').encode()
SURROGATE_IN_DSREGCMD = json.dumps({"ticket_id": "I", "device": "D", "action": "diagnose", "requested_by": "x",
                                    "dsregcmd": "@@"}).replace('"@@"', '"AzureAdJoined : YES\\n\\ud800"').encode()
DEEP_JIRA = (
    '{"webhookEvent":"jira:issue_created","issue":{"key":"IT-1","fields":{"customfield_10050":{"type":"doc","content":['
    + '{"type":"paragraph","content":[' * 900 + '{"type":"text","text":"DESKTOP-1"}' + "]}" * 900 + "]}}}}"
).encode()
SLOW_DSREGCMD = json.dumps({"ticket_id": "I", "device": "D", "action": "diagnose", "requested_by": "x",
                            "dsregcmd": "|" + " " * 60_000 + "\nAzureAdJoined : YES"}).encode()


@CI
@given(body=hostile_bodies())
@example(body=BIG_NUMBER)
@example(body=LONE_SURROGATE)
@example(body=SURROGATE_IN_DSREGCMD)
@example(body=DEEP_JIRA)
@example(body=SLOW_DSREGCMD)
def test_hostile_bodies_get_a_clear_4xx_never_a_5xx(webhook, body: bytes) -> None:
    runner, rig = webhook
    runner.run(asyncio.wait_for(probe_hostile_body(rig, body), timeout=10))


@CI
@given(tricky=tricky_names(), action=st.sampled_from(ACTIONS), ticket=st.text(string.ascii_uppercase + string.digits, min_size=1,
                                                                           max_size=10))
@example(tricky=("\u202e1-POTKSED", "rtl"), action="disable", ticket="T1")
@example(tricky=("DESKTOP\u200b-1", "zero-width"), action="delete", ticket="T2")
@example(tricky=("DESKTOP-1\x00", "nul"), action="notify", ticket="T3")
@example(tricky=("D\u0415SKTOP-1", "homoglyph"), action="disable", ticket="T4")
@example(tricky=("\x85DESKTOP-1", "nel"), action="disable", ticket="T5")  # trimmed like a space: it is DESKTOP-1
def test_unicode_tricks_in_device_names_never_reach_the_real_device(webhook, tricky, action: str, ticket: str) -> None:
    runner, rig = webhook
    name, _trick = tricky
    runner.run(probe_device_name(rig, name, action, ticket))
