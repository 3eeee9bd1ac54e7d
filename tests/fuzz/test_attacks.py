"""Hostile input, round two (issue 12): one property per attack class, each pinned with the input that broke it.

1 bounded records, 2 DNS rebinding, 3 private ranges, 4 guessable ids, 5 parsers that raised, 6 internals in
503s, 7 CSV formulas after a separator, 8 terminal escapes, 9 look-alike identifiers, 10 Graph URL paths.
Everything runs in-process or on loopback: address checks use a resolver stub and a mock transport.
Longer runs: `python bench/fuzz.py --json`.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.probes import (
    AuditRig,
    probe_address,
    probe_audit_cli,
    probe_audit_page,
    probe_cli,
    probe_csv,
    probe_diagnosis_size,
    probe_filters,
    probe_forgery,
    probe_graph_path,
    probe_guessed_id,
    probe_lookalike,
    probe_policy,
    probe_rebinding,
    probe_terminal,
    probe_unavailable,
)
from tests.fuzz.strategies import (
    CONTINUATIONS,
    audit_pages,
    callback_addresses,
    code_floods,
    filter_params,
    formula_cells,
    huge_policy_numbers,
    lookalike_ids,
    path_values,
    rebinding_answers,
    terminal_texts,
    unicode_digit_headers,
    valid_bodies,
    worst_prt,
)

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
CI = settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
FEW = settings(max_examples=15, deadline=None, suppress_health_check=FIXTURES)
WORST_PRT = worst_prt(12, 700, 3000)
SEVENTEEN_HUNDRED_CODES = "AzureAdJoined : NO\n Client ErrorCode : " + " ".join(f"0x8{i:07x}" for i in range(1, 1701)) + "\n"


# 1 -------------------------------------------------------------------- bounded records


@CI
@given(text=code_floods())
@example(text=SEVENTEEN_HUNDRED_CODES)  # a 185 KB diagnosis, stored twice, before the fix
@example(text=WORST_PRT)  # 12 PRT attempts of 11 long fields: 67 KB when 10 attempts were kept; 37 KB now
def test_a_flood_of_error_codes_makes_a_small_diagnosis(text: str) -> None:
    probe_diagnosis_size(text)


@FEW
@given(params=audit_pages)
@example(params={"limit": "1000", "format": "json"})  # 37 MB in one answer before the fix (here: 6 MB of records)
@example(params={"limit": "1000", "format": "excel"})
def test_an_audit_page_is_bounded_by_bytes_as_well_as_records(audit_rig: AuditRig, params: dict[str, str]) -> None:
    asyncio.run(probe_audit_page(audit_rig, params))


# 2, 3 ----------------------------------------------------------------- callbacks


@CI
@given(answers=rebinding_answers)
@example(answers=(["93.184.216.34"], ["127.0.0.1"]))  # connected to loopback before the fix (a second lookup)
@example(answers=(["93.184.216.34"], ["10.0.0.5"]))
def test_a_rebinding_name_gets_one_lookup_and_the_checked_address(answers: tuple[list[str], list[str]]) -> None:
    asyncio.run(probe_rebinding(*answers))


@settings(max_examples=300, deadline=None)
@given(address=callback_addresses, listed=st.booleans())
@example(address="10.1.2.3", listed=False)  # each of these was delivered to before the fix
@example(address="172.16.0.9", listed=False)
@example(address="192.168.1.1", listed=False)
@example(address="100.64.0.1", listed=False)
@example(address="fd12::1", listed=False)
@example(address="fec0::1", listed=False)
@example(address="64:ff9b:1::a00:1", listed=False)
@example(address="240.0.0.1", listed=False)
@example(address="10.1.2.3", listed=True)
def test_private_reserved_shared_and_translation_ranges_need_the_ip_listed(address: str, listed: bool) -> None:
    asyncio.run(probe_address(address, listed))


# 4, 9 ----------------------------------------------------------------- webhook identifiers


@CI
@given(body=valid_bodies())
def test_request_ids_cannot_be_computed_from_the_ticket(webhook, body: bytes) -> None:
    runner, rig = webhook
    runner.run(probe_guessed_id(rig, body))


@CI
@given(case=lookalike_ids())
@example(case=("ticket_id", "INC-\u31641001", "lookalike"))  # accepted before the fix
@example(case=("requested_by", "helpdesk\u2800@contoso.com", "lookalike"))
@example(case=("requested_by", "help\u00a0desk@contoso.com", "zs_space"))
@example(case=("ticket_id", "INC-1" + "\u0301" * 30 + "001", "combining_run"))
def test_look_alike_identifiers_are_refused(webhook, case: tuple[str, str, str]) -> None:
    runner, rig = webhook
    runner.run(probe_lookalike(rig, case[0], case[1]))


# 5 -------------------------------------------------------------------- parsers that raised


@CI
@given(body=valid_bodies(), data=st.data())
def test_a_timestamp_in_other_digits_is_a_401(webhook, body: bytes, data: st.DataObject) -> None:
    runner, rig = webhook
    runner.run(probe_forgery(rig, body, data.draw(unicode_digit_headers(body), label="header")))


def test_a_superscript_digit_in_t_is_a_401_not_a_500(webhook) -> None:
    runner, rig = webhook
    body = b'{"ticket_id":"INC-1","device":"DESKTOP-1","action":"diagnose","requested_by":"x"}'
    assert runner.run(probe_forgery(rig, body, "t=1750000000\u00b2,v1=" + "0" * 64)) == "401"  # ValueError: a 500 before


@CI
@given(params=filter_params())
@example(params={"from": "999999d"})  # OverflowError: a 500 before the fix
@example(params={"to": "9999-12-31"})
@example(params={"from": "0001-01-01T00:00:00+01:00"})
@example(params={"continuation": CONTINUATIONS[0]})
def test_review_filters_that_overflow_are_a_400(audit_rig: AuditRig, params: dict[str, str]) -> None:
    asyncio.run(probe_filters(audit_rig, params))


@FEW
@given(params=filter_params())
@example(params={"from": "999999d"})  # a traceback from `janitor audit list` before the fix
@example(params={"continuation": CONTINUATIONS[0]})
def test_janitor_audit_list_exits_2_on_filters_that_overflow(audit_rig: AuditRig, params: dict[str, str]) -> None:
    args = [f"--{'from' if name == 'from' else name}={value}" for name, value in params.items()]
    probe_audit_cli(audit_rig, ["list", *args])


@CI
@given(text=huge_policy_numbers())
@example(text="stale: {disable_after_days: " + "9" * 5000 + "}\n")  # a bare ValueError before the fix
def test_policy_numbers_of_thousands_of_digits_are_problems(text: str) -> None:
    assert probe_policy(text) == "refused"


@FEW
@given(text=huge_policy_numbers())
def test_policy_check_exits_2_on_numbers_of_thousands_of_digits(tmp_path, text: str) -> None:
    assert probe_cli(["policy", "check"], tmp_path / "policy.yaml", text) == "exit_2"


# 6 -------------------------------------------------------------------- 503 bodies


@CI
@given(detail=st.sampled_from(["/home/site/data/audit.sqlite3 is locked", "https://graph.microsoft.com/v1.0 timed out"])
       | st.text(max_size=40), transient=st.booleans())
@example(detail="could not reach Microsoft Graph at https://graph.microsoft.com", transient=True)  # echoed before the fix
def test_503_bodies_say_only_retry_later(detail: str, transient: bool) -> None:
    asyncio.run(probe_unavailable(detail, transient))


# 7, 8 ----------------------------------------------------------------- what reviewers open


@settings(max_examples=300, deadline=None)
@given(text=formula_cells())
@example(text="x;=1+1;y")  # a =1+1 cell where spreadsheets split on ';', before the fix
@example(text="a\t@SUM(A1)")
@example(text='a;"=cmd|calc')
def test_no_csv_piece_starts_a_formula_whatever_the_separator(text: str) -> None:
    probe_csv(text)


@FEW
@given(text=terminal_texts())
@example(text="\x1b[2J\x1b]0;owned\x07DESKTOP-1")  # cleared the screen and retitled the window before the fix
@example(text="DESKTOP-1\x9b2J\u202e")
def test_escape_sequences_never_reach_the_terminal(audit_rig: AuditRig, text: str) -> None:
    probe_terminal(audit_rig, text)


# 10 ------------------------------------------------------------------- Graph URL paths


@CI
@given(value=path_values)
@example(value="..")  # reached /v1.0/registeredDevices before the fix
@example(value="../x")
@example(value="a/b")
@example(value="o'brien#EXT#@contoso.onmicrosoft.com")
def test_values_in_graph_paths_are_one_encoded_guid_or_upn(value: str) -> None:
    asyncio.run(probe_graph_path(value))
