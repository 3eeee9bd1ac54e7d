"""infra/**/*.bicep against Azure's own resource models (management SDKs in tools/azmodels, built by `make test`).

A misspelled or misplaced property, an enum value Azure does not know, or a role id that is not the role the
template names would otherwise first fail (or silently grant the wrong thing) in the customer's subscription.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.infra import azmodels, builtin_roles
from tests.infra.bicep import INFRA, bicep_files

SERVICEBUS = INFRA / "modules" / "servicebus.bicep"
ROLES = INFRA / "modules" / "roles.bicep"
DECLARED = re.compile(r"^\s*resource\s+\w+\s+'([^'@]+)@", re.MULTILINE)


@pytest.fixture(scope="module")
def report() -> azmodels.Report:
    if not azmodels.AZMODELS_PYTHON.exists():
        pytest.fail(f"{azmodels.AZMODELS_PYTHON} is missing: run `make test` (it builds tools/azmodels)")
    return azmodels.check([d for path in bicep_files() for d in azmodels.declarations(path)])


def scratch_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of a template (same file name) with one edit."""
    text = source.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {source.name}"
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    copy.write_text(text.replace(old, new))
    return copy


def line_of(path: Path, text: str) -> int:
    """The line (1-based) of the one place `text` occurs in a file."""
    content = path.read_text()
    assert content.count(text) == 1, f"{text!r} must occur once in {path.name}"
    return content[: content.index(text)].count("\n") + 1


def test_the_real_templates_pass(report):
    assert [str(f) for f in report.findings] == []


def test_no_object_in_the_templates_escapes_the_models(report):
    """An object literal where the model says `any` would have its names passed unread: there is none."""
    assert report.unjudged == []


def test_checked_resource_types_equal_the_declared_ones(report):
    """Read with a plain regex, not tree-sitter: no declaration may slip past the walker unchecked."""
    declared = {kind for path in bicep_files() for kind in DECLARED.findall(path.read_text())}
    assert report.checked_types | set(report.no_model) == declared
    assert all(reason.strip() for reason in report.no_model.values()), "every type without a model says why"
    assert not report.checked_types & set(report.no_model)


def test_every_model_describes_the_templates_api_version_or_a_newer_one(report):
    """Checked against an older model, a property the template's API version added would look unknown."""
    for declared, model in report.models.items():
        api = declared.split("@", 1)[1]
        assert model["api_version"][:10] >= api[:10], f"{declared}: {model}"


def test_the_check_judges_the_enum_literals_the_templates_set(report):
    judged = set(report.enums)
    assert {
        "Microsoft.ServiceBus/namespaces sku.name",
        "Microsoft.ServiceBus/namespaces sku.tier",
        "Microsoft.ServiceBus/namespaces properties.minimumTlsVersion",
        "Microsoft.Storage/storageAccounts sku.name (from skuName)",
        "Microsoft.Storage/storageAccounts properties.minimumTlsVersion",
        "Microsoft.KeyVault/vaults properties.sku.name",
        "Microsoft.Web/sites properties.siteConfig.ftpsState",
        "Microsoft.Web/sites properties.siteConfig.minTlsVersion",
        "Microsoft.Web/sites properties.functionAppConfig.runtime.name",
        "Microsoft.Web/sites properties.functionAppConfig.deployment.storage.authentication.type",
        "Microsoft.Authorization/roleAssignments properties.principalType",
        "Microsoft.OperationalInsights/workspaces properties.sku.name",
    } <= judged


def test_a_misspelled_queue_property_fails_with_its_file_and_line(tmp_path):
    copy = scratch_copy(
        tmp_path, SERVICEBUS, "    maxDeliveryCount: maxDeliveryCount\n", "    maxDeliveryCont: maxDeliveryCount\n"
    )
    line = line_of(copy, "maxDeliveryCont:")
    [finding] = azmodels.check_file(copy)
    assert (finding.path, finding.line) == (copy, line)
    assert finding.kind == "Microsoft.ServiceBus/namespaces/queues"
    assert finding.where == "properties.maxDeliveryCont"
    assert {"maxDeliveryCount", "duplicateDetectionHistoryTimeWindow", "lockDuration"} <= set(finding.valid)
    assert str(finding).startswith(f"{copy}:{line}: Microsoft.ServiceBus/namespaces/queues properties.maxDeliveryCont:")


# case -> (template, text replaced, replacement, where the finding must point, its path in the body, message)
MUTATIONS = {
    "misplaced into runtime": (
        "modules/functionapp.bicep",
        "      runtime: {\n",
        "      runtime: {\n        instanceMemoryMB: 2048\n",
        "        instanceMemoryMB: 2048",
        "properties.functionAppConfig.runtime.instanceMemoryMB",
        "unknown property",
    ),
    "case of a name": (
        "modules/monitoring.bicep",
        "    DisableLocalAuth: true\n",
        "    disablelocalauth: true\n",
        "disablelocalauth",
        "properties.disablelocalauth",
        "did you mean 'DisableLocalAuth'",
    ),
    "name in a loop body": (
        "modules/functionapp.bicep",
        "          name: setting.key\n",
        "          key: setting.key\n",
        "key: setting.key",
        "properties.siteConfig.appSettings[].key",
        "unknown property",
    ),
    "top-level key": ("main.bicep", "  tags: tags\n}\n", "  tag: tags\n}\n", "  tag: tags", "tag", "unknown property"),
    "enum value": (
        "modules/functionapp.bicep",
        "ftpsState: 'Disabled'",
        "ftpsState: 'Disable'",
        "'Disable'",
        "properties.siteConfig.ftpsState",
        "is not a FtpsState",
    ),
    "enum value through a parameter's @allowed": (
        "modules/storage.bicep",
        "  'Standard_RAGZRS'\n",
        "  'Standard_RAGZR'\n",
        "'Standard_RAGZR'",
        "sku.name (from skuName)",
        "is not a SkuName",
    ),
    "runtime name": (
        "modules/functionapp.bicep",
        "name: 'python'",
        "name: 'python3'",
        "'python3'",
        "properties.functionAppConfig.runtime.name",
        "is not a RuntimeName",
    ),
    "literal of the wrong kind": (
        "modules/functionapp.bicep",
        "httpsOnly: true",
        "httpsOnly: 'true'",
        "httpsOnly:",
        "properties.httpsOnly",
        "expects a bool",
    ),
    "read-only property": (
        "modules/keyvault.bicep",
        "    contentType: 'text/plain'\n",
        "    secretUri: 'https://example'\n",
        "secretUri:",
        "properties.secretUri",
        "read-only",
    ),
    "required property missing": (
        "modules/monitoring.bicep",
        "  kind: 'web'\n",
        "",
        "resource appInsights",
        "kind",
        "required property",
    ),
    "property on an existing resource": (
        "modules/roles.bicep",
        "existing = {\n  name: keyVaultName\n",
        "existing = {\n  name: keyVaultName\n  location: 'westeurope'\n",
        "location: 'westeurope'",
        "location",
        "existing resource",
    ),
}


@pytest.mark.parametrize("case", MUTATIONS, ids=list(MUTATIONS))
def test_a_wrong_property_in_a_scratch_copy_fails_there(tmp_path, case):
    module, old, new, at, where, message = MUTATIONS[case]
    copy = scratch_copy(tmp_path, INFRA / module, old, new)
    findings = azmodels.check_file(copy)
    assert [(f.path, f.line, f.where) for f in findings] == [(copy, line_of(copy, at), where)], findings
    assert message in findings[0].message


def test_a_child_resource_declared_in_its_parent_is_checked_as_the_child_type(tmp_path):
    copy = tmp_path / "nested.bicep"
    copy.write_text(
        "resource ns 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {\n"
        "  name: 'sb'\n  location: 'westeurope'\n"
        "  resource q 'queues' = {\n    name: 'q'\n    properties: {\n      lockDuraton: 'PT1M'\n    }\n  }\n}\n"
    )
    [finding] = azmodels.check_file(copy)
    assert (finding.kind, finding.where, finding.line) == ("Microsoft.ServiceBus/namespaces/queues", "properties.lockDuraton", 7)


def test_a_type_with_no_mapped_model_fails_rather_than_passing_silently(tmp_path):
    copy = tmp_path / "unknown.bicep"
    copy.write_text("resource x 'Microsoft.Contoso/widgets@2024-01-01' = {\n  name: 'x'\n}\n")
    [finding] = azmodels.check_file(copy)
    assert (finding.kind, finding.line) == ("Microsoft.Contoso/widgets", 1)
    assert "RESOURCE_MODELS" in finding.message


def test_every_role_assigned_is_a_known_builtin_role_named_as_itself():
    found = [problem for path in bicep_files() for problem in builtin_roles.problems(path)]
    assert found == []
    assigned = {a.role_id for path in bicep_files() for a in builtin_roles.assignments(path)}
    assert assigned == set(builtin_roles.BUILTIN_ROLES), "the table lists exactly the roles the templates assign"


def test_every_role_in_the_table_cites_its_own_entry_on_microsoft_learn():
    for role_id, role in builtin_roles.BUILTIN_ROLES.items():
        page, _, anchor = role.source.partition("#")
        assert page.startswith("https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles/"), role_id
        assert anchor == role.name.lower().replace(" ", "-"), role_id


def test_a_role_id_swapped_for_another_roles_fails_with_its_line(tmp_path):
    sender, receiver = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
    copy = scratch_copy(tmp_path, ROLES, f"serviceBusDataSender: '{sender}'", f"serviceBusDataSender: '{receiver}'")
    [problem] = builtin_roles.problems(copy)
    line = next(a.line for a in builtin_roles.assignments(copy) if a.symbol == "queueSender")
    assert problem.startswith(f"{copy}:{line}: queueSender:")
    assert "'Azure Service Bus Data Receiver'" in problem and "'serviceBusDataSender'" in problem


def test_an_unknown_role_id_fails(tmp_path):
    copy = scratch_copy(tmp_path, ROLES, "'3913510d-42f4-4e42-8a64-420c390055eb'", "'3913510d-42f4-4e42-8a64-420c390055ec'")
    [problem] = builtin_roles.problems(copy)
    assert "metricsPublisher" in problem and "not in BUILTIN_ROLES" in problem
