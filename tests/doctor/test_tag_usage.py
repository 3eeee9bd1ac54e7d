"""`janitor doctor` warns when Conditional Access device filters or dynamic group rules read the tag attribute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.doctor import Status, needed_permissions, run_checks
from shared.doctor.tag_usage import CA_CHECK, GROUPS_CHECK, mentions_attribute
from shared.policy import load_policy
from simulator import SimulatorThread, Tenant
from tests.doctor.conftest import FakeCredential


@pytest.mark.parametrize(
    ("rule", "attribute", "mentioned"),
    [
        ('device.extensionAttribute15 -eq "kiosk"', 15, True),
        ('(device.ExtensionAttribute15 -eq "kiosk") or (device.model -eq "x")', 15, True),
        ('device . EXTENSIONATTRIBUTE15 -ne "x"', 15, True),
        ('extensionAttribute15 -eq "x"', 15, True),  # a CA filter names device properties without a prefix
        ('device.extensionAttribute1 -eq "x"', 15, False),
        ('device.extensionAttribute150 -eq "x"', 15, False),
        ('device.extensionAttribute15 -eq "x"', 1, False),
        ('(user.extensionAttribute15 -eq "x")', 15, False),  # a user's attribute: the device tag does not move it
        ('device.displayName -contains "extensionAttribute"', 15, False),
        (None, 15, False),
    ],
)
def test_which_rules_read_the_attribute(rule: str | None, attribute: int, mentioned: bool) -> None:
    assert mentions_attribute(rule, attribute) is mentioned


@pytest.fixture(scope="module")
def seeded_simulator() -> Iterator[SimulatorThread]:
    tenant = Tenant.generate(devices=40, seed=11)
    tenant.seed_tag_rules(attribute=15)
    with SimulatorThread(tenant) as sim:
        yield sim


@pytest.fixture
def env(seeded_simulator, tmp_path) -> dict[str, str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("mode: enforce\n")
    return {"GRAPH_BASE_URL": seeded_simulator.base_url, "GRAPH_AUTH": "default",
            "JANITOR_DATA_DIR": str(tmp_path / "data"), "JANITOR_POLICY": str(policy)}  # fmt: skip


OPTIONAL = {"Policy.Read.All", "Group.Read.All"}


def roles(env: dict[str, str]) -> set[str]:
    return set(needed_permissions(load_policy(env["JANITOR_POLICY"]), tickets=False))


async def test_rules_reading_the_tag_attribute_are_named_with_their_text(env) -> None:
    results = {r.name: r for r in await run_checks(env, credential=FakeCredential(roles(env) | OPTIONAL))}
    ca, groups = results[CA_CHECK], results[GROUPS_CHECK]
    assert ca.status is Status.WARN and groups.status is Status.WARN
    assert "1 of 2 Conditional Access" in ca.detail and "'Kiosks: require compliant device' (enabled, include)" in ca.detail
    assert 'device.extensionAttribute15 -eq "kiosk"' in ca.detail and "Surface" not in ca.detail
    assert "1 of 2 dynamic groups" in groups.detail and "'Kiosk devices'" in groups.detail
    assert "Windows devices" not in groups.detail
    assert "tag.attribute" in ca.fix
    assert results["graph permissions"].status is Status.OK


async def test_another_tag_attribute_reads_clean(env, tmp_path) -> None:
    policy = tmp_path / "other.yaml"
    policy.write_text("mode: enforce\ntag:\n  attribute: 9\n")
    env |= {"JANITOR_POLICY": str(policy)}
    results = {r.name: r for r in await run_checks(env, credential=FakeCredential(roles(env) | OPTIONAL))}
    assert results[CA_CHECK].status is Status.OK and "none of 2" in results[CA_CHECK].detail
    assert results[GROUPS_CHECK].status is Status.OK and "extensionAttribute9" in results[GROUPS_CHECK].detail


async def test_without_the_optional_grants_the_doctor_says_which_permission_it_lacks(env) -> None:
    results = await run_checks(env, credential=FakeCredential(roles(env)))
    checks = {r.name: r for r in results}
    ca, groups = checks[CA_CHECK], checks[GROUPS_CHECK]
    assert ca.status is Status.WARN and "lacks Policy.Read.All" in ca.detail and "--with-optional" in ca.fix
    assert groups.status is Status.WARN and "lacks Group.Read.All" in groups.detail
    assert all(r.status is not Status.FAIL for r in results if r.name in (CA_CHECK, GROUPS_CHECK))
