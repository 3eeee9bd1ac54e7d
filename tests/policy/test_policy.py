"""Policy-as-code: safe defaults, each invalid case rejected with its path, stable hash, schema = model."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from janitor_cli import policy as policy_cli
from shared.policy import (
    DEFAULT_POLICY,
    Policy,
    PolicyError,
    check_policy_text,
    load_policy,
    parse_policy,
    policy_hash,
    policy_schema,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "policy.example.yaml"


def test_no_file_means_the_safe_defaults():
    policy = load_policy()
    assert policy == DEFAULT_POLICY == Policy()
    assert policy.mode == "report" and not policy.enforce
    assert policy.stale.disable_after_days == 90 and policy.stale.delete_after_disabled_days == 30
    assert policy.protect.autopilot is True
    assert policy.pending.action == "notify" and policy.stale.non_windows_action == "tag"
    assert policy.gates.allow_delete_with_bitlocker_keys is False
    assert (policy.limits.max_destructive_per_run, policy.limits.max_destructive_fraction) == (500, 0.05)
    assert parse_policy("") == parse_policy("# only a comment\n") == policy


def test_janitor_policy_setting_names_the_file(tmp_path, monkeypatch):
    file = tmp_path / "p.yaml"
    file.write_text("mode: enforce\nstale:\n  disable_after_days: 120\n  platforms: {iOS: 180}\n")
    monkeypatch.setenv("JANITOR_POLICY", str(file))
    policy = load_policy()
    assert policy.enforce and policy.stale.disable_after_days == 120
    assert policy.stale.disable_after_days_for("ios") == 180 and policy.stale.disable_after_days_for("Windows") == 120
    assert load_policy(env={}) == Policy()  # an explicit empty environment: defaults


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="no such file"):
        load_policy(tmp_path / "nope.yaml")


def test_platform_keys_are_families():
    """`MacMDM: 180` used to match nothing but Intune Macs; families cover every spelling of the platform."""
    assert check_policy_text("stale:\n  platforms: {macOS: 180, IOS: 120, android: 90, Linux: 60, other: 365}\n") == []
    problems = [str(p) for p in check_policy_text("stale:\n  platforms: {MacMDM: 180}\n")]
    assert len(problems) == 1 and problems[0].startswith("stale.platforms.MacMDM: is not a platform family; use one of: windows")
    assert "macos (macmdm, macos" in problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stale:\n  disable_after_days: 14\n", "stale.disable_after_days: 14 is below the minimum 30"),
        ("stale:\n  delete_after_disabled_days: 7\n", "stale.delete_after_disabled_days: 7 is below the minimum 14"),
        ("stale:\n  platforms:\n    iOS: 20\n", "stale.platforms.iOS: 20 is below the minimum 30"),
        ("stale:\n  platforms:\n    iOS: 60\n    IOS: 90\n",
         "stale.platforms.IOS: names the same platform as 'iOS' (case is ignored)"),
        ("stale:\n  non_windows_action: disable\n", "stale.non_windows_action: 'disable' is not one of: tag, delete"),
        ("protect:\n  autopilot: false\n", "protect.autopilot: cannot be turned off"),
        ("protect:\n  groups: [not-a-guid]\n", "protect.groups[0]: 'not-a-guid' is not a group object id (GUID)"),
        ("protect:\n  name_patterns: ['']\n", "protect.name_patterns[0]: must not be empty"),
        ("protect:\n  name_patterns: [KIOSK-*, kiosk-*]\n", "protect.name_patterns[1]: repeats protect.name_patterns[0]"),
        ("mode: enforcing\n", "mode: 'enforcing' is not one of: report, enforce"),
        ("limits:\n  max_destructive_fraction: 0.9\n", "limits.max_destructive_fraction: 0.9 is above the maximum 0.5"),
        ("limits:\n  max_destructive_fraction: 0\n", "limits.max_destructive_fraction: 0 must be greater than 0"),
        ("limits:\n  max_destructive_per_run: -1\n", "limits.max_destructive_per_run: -1 is below the minimum 0"),
        ("limits:\n  max_destructive_per_run: lots\n",
         "limits.max_destructive_per_run: must be a whole number, not text ('lots')"),
        ("gates:\n  intune_active_days: 0\n", "gates.intune_active_days: 0 is below the minimum 1"),
        ("duplicate:\n  min_inactive_days: 7\n", "duplicate.min_inactive_days: 7 is below the minimum 21"),
        ("gates:\n  allow_delete_with_laps: 1\n", "gates.allow_delete_with_laps: must be true or false, not int 1"),
        ("gates:\n  allow_delete_with_bitlocker_keys: 'yes please'\n",
         "gates.allow_delete_with_bitlocker_keys: must be true or false, not text ('yes please')"),
        ("tag:\n  attribute: 16\n", "tag.attribute: 16 is above the maximum 15"),
        ("notify:\n  admins: [helpdesk]\n", "notify.admins[0]: 'helpdesk' is not a mail address"),
        ('notify:\n  admins: ["secops@contoso.com\\u202e"]\n',
         "notify.admins[0]: 'secops@contoso.com\\u202e' is not a mail address"),
        ("pending:\n  action: delete\n  stuck_after_days: 2\n",
         "pending.stuck_after_days: 2 is below the minimum 7 when pending.action is delete"),
        ("stale:\n  disable_after_day: 90\n", "stale.disable_after_day: unknown key (did you mean 'disable_after_days'?)"),
        ("stael:\n  disable_after_days: 90\n", "stael: unknown key (did you mean 'stale'?)"),
        ("schedule: '0 0 2 * * *'\n",
         "schedule: unknown key: the scan schedule is not a policy key; set the SCAN_SCHEDULE app setting"),
        ("stale: 90\n", "stale: must be a mapping of keys, not int 90"),
        ("- mode: report\n", "(top level): must be a mapping of keys, not a list"),
        ("stale:\n  disable_after_days: 90\n  disable_after_days: 10\n",
         "(top level): line 3, column 3: duplicate key 'disable_after_days'"),
        ("mode: [report\n", "(top level): line 2, column 1:"),
    ],
)
def test_each_invalid_policy_is_rejected_with_its_path(text, expected):
    problems = [str(p) for p in check_policy_text(text)]
    assert any(p.startswith(expected) for p in problems), problems
    with pytest.raises(PolicyError) as err:
        parse_policy(text, source="bad.yaml")
    assert "bad.yaml" in str(err.value) and expected in str(err.value)


def test_every_problem_is_reported_not_only_the_first():
    problems = check_policy_text("stale:\n  disable_after_days: 10\n  delete_after_disabled_days: 1\ntag:\n  attribute: 0\n")
    assert sorted(p.path for p in problems) == ["stale.delete_after_disabled_days", "stale.disable_after_days", "tag.attribute"]
    mixed = check_policy_text("limits: []\nstale:\n  disable_after_dayz: 90\n  delete_after_disabled_days: 1\nmode: off\n")
    assert sorted(p.path for p in mixed) == ["limits", "mode", "stale.delete_after_disabled_days", "stale.disable_after_dayz"]


def test_hash_is_stable_and_tracks_meaning():
    a = parse_policy("mode: enforce\nstale:\n  disable_after_days: 120\n  delete_after_disabled_days: 45\n")
    b = parse_policy("stale:\n  delete_after_disabled_days: 45\n  disable_after_days: 120\nmode: enforce\n")
    assert policy_hash(a) == policy_hash(b)
    assert policy_hash(parse_policy("")) == policy_hash(parse_policy("mode: report\nstale: {disable_after_days: 90}\n"))
    assert policy_hash(a) != policy_hash(parse_policy("mode: enforce\nstale:\n  disable_after_days: 121\n"))
    assert policy_hash(Policy()) == policy_hash(Policy())
    assert len(policy_hash(a)) == 16


def test_whole_numbers_written_as_floats_are_accepted():
    assert parse_policy("stale:\n  disable_after_days: 120.0\n").stale.disable_after_days == 120


def test_schema_and_model_declare_the_same_keys_and_defaults():
    schema = policy_schema()

    def defaults(node: dict) -> object:
        if node.get("type") == "object" and "properties" in node:
            return {key: defaults(sub) for key, sub in node["properties"].items()}
        return node["default"]

    assert defaults(schema) == DEFAULT_POLICY.to_dict()


def test_the_documented_example_is_valid_and_uses_every_key():
    text = EXAMPLE.read_text()
    assert check_policy_text(text) == []
    example = parse_policy(text).to_dict()
    assert set(example) == set(DEFAULT_POLICY.to_dict())
    import yaml

    written = yaml.safe_load(text)
    for section, keys in DEFAULT_POLICY.to_dict().items():
        if isinstance(keys, dict):
            assert set(written[section]) == set(keys), section


def test_every_policy_key_is_documented():
    doc = (REPO / "docs" / "policy.md").read_text()
    for section, keys in DEFAULT_POLICY.to_dict().items():
        names = [f"{section}.{k}" for k in keys] if isinstance(keys, dict) else [section]
        for name in names:
            assert f"`{name}`" in doc, f"docs/policy.md does not document {name}"


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    policy_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # typer needs two commands to keep the `policy` group name
    return app


def test_policy_check_ok(cli, tmp_path):
    file = tmp_path / "ok.yaml"
    file.write_text("mode: report\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(file)])
    assert result.exit_code == 0 and result.stdout.startswith("OK: ")


def test_policy_check_prints_each_problem_and_exits_2(cli, tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("stale:\n  disable_after_days: 14\nprotect:\n  autopilot: false\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(file)])
    assert result.exit_code == 2
    assert "stale.disable_after_days: 14 is below the minimum 30" in result.stdout
    assert "protect.autopilot: cannot be turned off" in result.stdout
    missing = CliRunner().invoke(cli, ["policy", "check", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_policy_show_prints_the_effective_policy(cli, tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text("stale:\n  disable_after_days: 100\n")
    result = CliRunner().invoke(cli, ["policy", "show", "--policy", str(file)])
    assert result.exit_code == 0
    assert policy_hash(load_policy(file)) in result.stdout
    import yaml

    shown = yaml.safe_load(result.stdout)
    assert shown["stale"]["disable_after_days"] == 100 and shown["mode"] == "report"
