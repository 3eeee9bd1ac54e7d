"""The endpoint -> permission table and the OData query helpers (pure, no server)."""

from __future__ import annotations

import pytest

from shared.graph.permissions import ALL_PERMISSIONS, REQUIRED_PERMISSIONS, endpoint_for, missing_permission_hint
from shared.graph.query import is_guid, literal, needs_advanced_query


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/devices", "Device.Read.All"),
        ("GET", "/devices/0b9e7c4e-1111-2222-3333-444455556666", "Device.Read.All"),
        ("GET", "/devices(deviceId='9de5069c-1111-2222-3333-444455556666')", "Device.Read.All"),
        ("PATCH", "/devices/abc", "Device.ReadWrite.All"),
        ("DELETE", "/devices/abc", "Device.ReadWrite.All"),
        ("GET", "/devices/abc/registeredOwners", "User.Read.All"),
        ("GET", "/groups/g1/transitiveMembers/microsoft.graph.device", "GroupMember.Read.All"),
        ("POST", "/users/u1/checkMemberGroups", "GroupMember.Read.All"),
        ("GET", "/policies/deviceRegistrationPolicy", "Policy.Read.DeviceConfiguration"),
        ("GET", "/informationProtection/bitlocker/recoveryKeys", "BitlockerKey.ReadBasic.All"),
        ("GET", "/deviceManagement/managedDevices", "DeviceManagementManagedDevices.Read.All"),
        ("POST", "/users/someone@contoso.com/sendMail", "Mail.Send"),
    ],
)
def test_each_endpoint_names_its_permission(method: str, path: str, permission: str) -> None:
    row = endpoint_for(method, path)
    assert row is not None
    assert permission in row.permissions
    assert permission in missing_permission_hint(method, path)


def test_unknown_endpoint_still_gives_a_hint() -> None:
    assert endpoint_for("GET", "/me/drive") is None
    assert "GET /me/drive" in missing_permission_hint("GET", "/me/drive")


def test_table_is_consistent() -> None:
    assert set(ALL_PERMISSIONS) == {p for row in REQUIRED_PERMISSIONS.values() for p in row.permissions}
    assert list(ALL_PERMISSIONS) == sorted(ALL_PERMISSIONS)
    assert all(row.key == key for key, row in REQUIRED_PERMISSIONS.items())
    assert "Device.ReadWrite.All" in ALL_PERMISSIONS


@pytest.mark.parametrize(
    ("filter", "advanced"),
    [
        (None, False),
        ("accountEnabled eq false", False),
        ("trustType eq 'ServerAd' and approximateLastSignInDateTime le 2024-01-01T00:00:00Z", False),
        ("startsWith(displayName,'not here')", False),  # operators inside literals do not count
        ("displayName eq 'a ne b'", False),
        ("trustType ne 'Workplace'", True),
        ("not(accountEnabled eq true)", True),
        ("approximateLastSignInDateTime eq null", True),
        ("alternativeSecurityIds/$count eq 0", True),
        ("physicalIds/any(p:startsWith(p,'[ZTDID]'))", True),
        ("operatingSystem in ('iOS','Android')", True),
    ],
)
def test_advanced_query_detection(filter: str | None, advanced: bool) -> None:
    assert needs_advanced_query(filter) is advanced


def test_literal_and_guid() -> None:
    assert literal("O'Brien's PC") == "'O''Brien''s PC'"
    assert is_guid("9de5069c-1111-2222-3333-444455556666")
    assert not is_guid("DESKTOP-D10L83K")
