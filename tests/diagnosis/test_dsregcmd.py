"""The dsregcmd /status parser on every fixture (Windows 10 and 11 layouts) and on hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.diagnosis import DsregcmdParseError, parse_dsregcmd
from tests.diagnosis.fakes import FIXTURES, TENANT_ID, fixture

# fixture -> (join_type, DeviceId, TenantId, AzureAdPrt, DeviceAuthStatus, codes found)
EXPECTED = {
    "win11_entra_joined_healthy.txt": ("entra_joined", "4b1d9c8e-2f6a-4c3b-9e71-0d5a8f2c6b13", TENANT_ID, True, "SUCCESS", []),
    "win10_1709_hybrid_joined.txt": ("hybrid", "8c3e1f7a-52b9-4d06-a1e4-6f2b9d7c3a58", TENANT_ID, True, None, []),
    "win10_hybrid_pending_sync_join.txt": ("domain_only", None, None, False, None, ["0x801c03f2"]),
    "win10_hybrid_discovery_failed.txt": ("domain_only", None, None, False, None, ["0x80070520", "0x801c0021", "0x80072ee2"]),
    "win11_registered_byod.txt": ("registered", None, None, False, None, []),
    "win11_not_joined.txt": ("not_joined", None, None, False, None, []),
    "win11_mismatched_tenant.txt": (
        "entra_joined",
        "c5e7a9b1-3d5f-4a7c-9e1b-3d5f7a9c1e3b",
        "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        True,
        "SUCCESS",
        [],
    ),
    "win11_prt_missing.txt": (
        "entra_joined",
        "1e3a5c7e-9b1d-4f3a-8c5e-7b9d1f3a5c7e",
        TENANT_ID,
        False,
        "SUCCESS",
        ["0xc000006d"],
    ),
    "win11_device_deleted.txt": (
        "entra_joined",
        "7d9f1b3d-5f7a-4c9e-b1d3-f5a7c9e1b3d5",
        TENANT_ID,
        False,
        "FAILED. Device is either disabled or deleted",
        ["0xc000006d"],
    ),
    "win11_keys_need_recovery.txt": (
        "hybrid",
        "0f2b4d6f-8a0c-4e2b-9d6f-8a0c2e4b6d8f",
        TENANT_ID,
        False,
        "SUCCESS",
        ["0x80090016"],
    ),
    "win10_blank_values_odd_spacing.txt": (
        "entra_joined",
        "6e8b0d2f-4a6c-4e8b-8d2f-4a6c8e0b2d4f",
        TENANT_ID,
        True,
        "SUCCESS",
        [],
    ),
}


def test_every_fixture_is_covered() -> None:
    assert {p.name for p in FIXTURES.glob("*.txt")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fields(name: str) -> None:
    join_type, device_id, tenant_id, prt, auth, codes = EXPECTED[name]
    status = parse_dsregcmd((FIXTURES / name).read_bytes())
    assert status.join_type == join_type
    assert status.device_id == device_id
    assert status.tenant_id == tenant_id
    assert status.azure_ad_prt is prt
    assert status.device_auth_status == auth
    assert sorted({c.code for c in status.error_codes}) == sorted(codes)


def test_sections_and_values_keep_colons() -> None:
    status = parse_dsregcmd(fixture("win11_entra_joined_healthy.txt"))
    assert list(status.sections)[:6] == [
        "Device State",
        "Device Details",
        "Tenant Details",
        "User State",
        "SSO State",
        "Diagnostic Data",
    ]
    assert (
        status.value("AuthCodeUrl") == "https://login.microsoftonline.com/3f7c2a91-5d4e-4b8a-9c1f-2e6d8b0a4c57/oauth2/authorize"
    )
    assert status.value("DeviceCertificateValidity") == "[ 2023-03-14 09:12:44.000 UTC -- 2033-03-14 09:42:44.000 UTC ]"
    assert status.value("Last HostName Update") == "SOURCE: AADJ"  # the first of two values wins
    assert status.value("SettingsUrl") is None  # blank
    assert status.user_upn == "adele.vance@contoso.com"
    assert status.sections["Tenant Details"]["TenantName"] == "Contoso"


def test_windows_10_1709_single_section_layout() -> None:
    status = parse_dsregcmd(fixture("win10_1709_hybrid_joined.txt"))
    assert list(status.sections) == ["Device State", "User State"]
    assert status.value("KeySignTest") == "MUST Run elevated to test."
    assert status.value("dmComplianceUrl") == "https://portal.manage.microsoft.com/?portalAction=Compliance"
    assert status.value("WamDefaultAuthority") == "organizations"
    assert status.value("EnterprisePrtAuthority") is None


def test_blank_values_tabs_nbsp_full_width_colon_and_crlf() -> None:
    raw = (FIXTURES / "win10_blank_values_odd_spacing.txt").read_bytes()
    assert b"\r\n" in raw and "\u00a0".encode() in raw and "\uff1a".encode() in raw
    status = parse_dsregcmd(raw)
    assert status.fields["AzureAdJoined"] == "YES"  # tab-separated
    assert status.fields["EnterpriseJoined"] == "NO"  # no space after the colon
    assert status.fields["DomainJoined"] == "NO"  # non-breaking space before the colon, trailing spaces
    assert status.fields["DeviceAuthStatus"] == "SUCCESS"  # full-width colon
    assert status.fields["Device Name"] is None and status.fields["TenantName"] is None and status.fields["EnterprisePrt"] is None
    assert status.device_id == "6e8b0d2f-4a6c-4e8b-8d2f-4a6c8e0b2d4f"  # braces and case normalised
    assert "Device State" in status.sections  # header with tabs inside the bars


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig", "cp1252"])
def test_encodings_powershell_and_notepad_produce(encoding: str) -> None:
    text = fixture("win11_prt_missing.txt").replace("\n", "\r\n")
    status = parse_dsregcmd(text.encode(encoding))
    assert status.device_id == "1e3a5c7e-9b1d-4f3a-8c5e-7b9d1f3a5c7e"
    assert status.azure_ad_prt is False


def test_pre_join_diagnostics() -> None:
    status = parse_dsregcmd(fixture("win10_hybrid_discovery_failed.txt"))
    assert status.failed_tests() == {"DRS Discovery Test": "FAIL [0x801c0021/0x80072ee2]"}
    assert status.tests["Token acquisition Test"] == "SKIPPED"
    sub = [c for c in status.error_codes if c.field == "DRS Discovery Test"]
    assert [(c.code, c.subcode_of) for c in sub] == [("0x801c0021", None), ("0x80072ee2", "0x801c0021")]
    assert status.value("Error Phase") == "discover"
    assert status.value("client errorcode") == "0x801c0021"  # lookups ignore case and spaces


def test_prt_diagnostics_block_and_zero_codes_ignored() -> None:
    status = parse_dsregcmd(fixture("win11_prt_missing.txt"))
    [block] = status.prt_diagnostics
    assert block.kind == "AcquirePrtDiagnostics" and block.prt == "AzureAdPrt"
    assert block.fields["Attempt Status"] == "0xc000006d"
    assert block.fields["Server Error Code"] == "invalid_grant"
    assert "EnterprisePrt" not in block.fields  # the block ends at the next ordinary field
    assert all(c.code != "0x00000000" for c in status.error_codes)  # "HTTP Error : 0x0" is success


def test_key_sign_test_failure_is_not_a_pre_join_test() -> None:
    status = parse_dsregcmd(fixture("win11_keys_need_recovery.txt"))
    assert status.failed_tests() == {}
    assert status.flag("AadRecoveryEnabled") is True


def test_to_json_uses_the_tools_field_names() -> None:
    out = parse_dsregcmd(fixture("win10_hybrid_pending_sync_join.txt")).to_json()
    assert out["AzureAdJoined"] == "NO" and out["DomainJoined"] == "YES" and out["Client ErrorCode"] == "0x801c03f2"
    assert out["ErrorCodes"] == [
        {"code": "0x801c03f2", "field": "Client ErrorCode", "section": "Diagnostic Data", "subcode_of": None}
    ]
    assert out["Sections"]["Diagnostic Data"]["Server ErrorCode"] == "DirectoryError"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "hello world",
        '{"AzureAdJoined": true}',
        "Name : Value\nOther : Thing",
        "\x00\x01\x02binary",
        "a" * 2_000_001,
    ],
)
def test_unparseable_input_is_a_clear_error(text: str) -> None:
    with pytest.raises(DsregcmdParseError) as info:
        parse_dsregcmd(text)
    message = str(info.value)
    assert "dsregcmd" in message or "binary" in message
    assert len(message) < 400


def test_unparseable_bytes() -> None:
    with pytest.raises(DsregcmdParseError, match="bytes"):
        parse_dsregcmd(b"x" * 1_000_001)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400) | st.binary(max_size=400))
def test_arbitrary_input_parses_or_raises_the_parse_error(data: str | bytes) -> None:
    try:
        status = parse_dsregcmd(data)
    except DsregcmdParseError:
        return
    assert status.join_type in ("hybrid", "entra_joined", "domain_only", "registered", "enterprise_drs", "not_joined")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(EXPECTED)), st.sampled_from(["\n", "\r\n"]), st.integers(0, 6))
def test_indentation_and_line_endings_do_not_change_the_result(name: str, newline: str, indent: int) -> None:
    original = parse_dsregcmd(fixture(name))
    lines = fixture(name).splitlines()
    reflowed = newline.join((" " * indent + line.strip()) for line in lines)
    again = parse_dsregcmd(reflowed)
    assert again.fields == original.fields
    assert [c.code for c in again.error_codes] == [c.code for c in original.error_codes]
