"""Which Graph permissions a policy needs: derived from the features table and the endpoint table."""

from __future__ import annotations

from shared.doctor.permissions import FEATURES, needed_permissions, optional_permissions, satisfies
from shared.graph.permissions import ALL_PERMISSIONS, REQUIRED_PERMISSIONS
from shared.policy import parse_policy


def needs(text: str, *, tickets: bool = False) -> set[str]:
    return set(needed_permissions(parse_policy(text), tickets=tickets))


def test_report_only_reads_devices_and_the_intune_gate_only():
    # A recent Intune check-in blocks a disable too, and report mode previews the gates ([Stale]: MDM first).
    assert needs("mode: report\n") == {"Device.Read.All", "DeviceManagementManagedDevices.Read.All"}


def test_protected_groups_need_group_membership_even_in_report_mode():
    assert needs("mode: report\nprotect:\n  groups: [6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b]\n") == {
        "Device.Read.All", "DeviceManagementManagedDevices.Read.All", "GroupMember.Read.All"}  # fmt: skip


def test_a_delete_opt_in_in_report_mode_needs_the_delete_gates_reads_but_no_write():
    got = needs("mode: report\npending:\n  action: delete\n")
    assert got == {"Device.Read.All", "BitlockerKey.ReadBasic.All", "DeviceLocalCredential.ReadBasic.All",
                   "DeviceManagementManagedDevices.Read.All"}  # fmt: skip


def test_enforce_with_notifications_needs_writes_gates_and_mail():
    got = needs("mode: enforce\nnotify:\n  owners: true\n  admins: [a@contoso.example]\n")
    assert got == {"Device.Read.All", "Device.ReadWrite.All", "BitlockerKey.ReadBasic.All",
                   "DeviceLocalCredential.ReadBasic.All", "DeviceManagementManagedDevices.Read.All", "User.Read.All",
                   "Mail.Send"}  # fmt: skip


def test_enforce_without_owner_mail_needs_no_mail_permission():
    assert "Mail.Send" not in needs("mode: enforce\nnotify:\n  owners: false\n")


def test_the_ticket_webhook_adds_the_join_scope_reads():
    assert needs("mode: report\n", tickets=True) == {
        "Device.Read.All", "DeviceManagementManagedDevices.Read.All", "User.Read.All", "GroupMember.Read.All",
        "Policy.Read.DeviceConfiguration"}  # fmt: skip


def test_each_permission_lists_the_features_that_need_it():
    needed = needed_permissions(parse_policy("mode: enforce\n"), tickets=False)
    assert needed["Device.ReadWrite.All"] == (
        "device write: clear_tag", "device write: tag", "device write: disable", "device write: delete",
        "device write: reenable", "device write: restore")  # fmt: skip
    assert "delete snapshot: owners and group memberships" in needed["User.Read.All"]


def test_features_follow_the_action_table_and_the_gates_declared_needs():
    """Permissions exist once: a gate's or an action's Graph calls reach the doctor without a second list."""
    from shared.actions import ACTIONS
    from shared.worker.gates import GATES

    covered = {key for feature in FEATURES for key in feature.endpoints}
    assert {key for spec in ACTIONS.values() for key in spec.endpoints} <= covered
    assert {key for gate in GATES for key in gate.needs} <= covered
    assert all(set(gate.needs) <= set(REQUIRED_PERMISSIONS) for gate in GATES)


def test_features_name_only_known_endpoints_and_together_cover_every_permission():
    for feature in FEATURES:
        assert set(feature.endpoints) <= set(REQUIRED_PERMISSIONS), feature.name
    everything = needs(
        "mode: enforce\nprotect:\n  groups: [6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b]\nnotify:\n  admins: [a@contoso.example]\n",
        tickets=True,
    )
    policy = parse_policy("mode: enforce\n")
    everything |= set(optional_permissions(policy, tickets=True))
    assert everything == set(ALL_PERMISSIONS), "a feature that is never enabled, or an endpoint no feature uses"


def test_the_doctors_tag_reads_are_optional_never_needed():
    policy = parse_policy("mode: enforce\nprotect:\n  groups: [6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b]\n")
    optional = optional_permissions(policy, tickets=True)
    assert set(optional) == {"Policy.Read.All", "Group.Read.All"}
    assert not set(optional) & set(needed_permissions(policy, tickets=True))
    assert "Conditional Access" in optional["Policy.Read.All"][0] and "dynamic group" in optional["Group.Read.All"][0]


def test_broader_grants_cover_narrower_reads():
    assert satisfies("Device.ReadWrite.All", "Device.Read.All")
    assert satisfies("BitlockerKey.Read.All", "BitlockerKey.ReadBasic.All")
    assert satisfies("Directory.Read.All", "User.Read.All")
    assert not satisfies("Device.Read.All", "Device.ReadWrite.All")
    assert not satisfies("Directory.Read.All", "Mail.Send")
