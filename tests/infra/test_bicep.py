"""The Bicep templates: they parse, wire identity-based connections, and set what the code reads."""

from __future__ import annotations

import json
import re

import pytest

from shared.doctor.platform import AZURE_PLATFORM_NAMES
from shared.settings import SETTINGS
from tests.infra.bicep import (
    INFRA,
    bicep_files,
    declarations,
    literal,
    object_nodes,
    object_value,
    parameter_default,
    parse,
    problems,
    resources,
    variable,
)

FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"


def app_settings() -> dict[str, str]:
    """The Function App's app settings: `var appSettings` in functionapp.bicep (name -> value as written)."""
    return {name: str(value) for name, value in object_value(variable(FUNCTION_APP, "appSettings")).items()}


def test_there_are_templates_to_check():
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert {"main.bicep", "modules/functionapp.bicep", "modules/servicebus.bicep", "modules/storage.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses_without_error_or_missing_nodes(path):
    tree = parse(path)
    assert tree.root_node.type == "infrastructure"
    assert problems(tree) == [], f"{path.name} does not parse cleanly"


def test_the_problem_finder_sees_a_broken_template():
    from tests.infra.bicep import parser

    broken = parser().parse(b"resource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'a'\n  properties: {\n")
    assert problems(broken), "an unterminated object must be reported"


def test_every_setting_azure_must_set_is_set_by_the_bicep():
    required = {s.name for s in SETTINGS if s.azure}
    missing = sorted(required - set(app_settings()))
    assert not missing, f"shared/settings.py marks these azure=True but infra/ does not set them: {missing}"


def test_the_bicep_sets_nothing_unknown():
    known = {s.name for s in SETTINGS} | AZURE_PLATFORM_NAMES
    unknown = sorted(set(app_settings()) - known)
    assert not unknown, f"app settings neither in shared/settings.py nor platform settings: {unknown}"


def test_no_keys_or_connection_strings_in_app_settings():
    values = app_settings()
    for name, value in values.items():
        assert "listKeys" not in value and "AccountKey" not in value and "SharedAccessKey" not in value, name
        assert "listConnectionStrings" not in value, name
    with_connection_strings = {n for n in values if "CONNECTION_STRING" in n.upper() or n == "AzureWebJobsStorage"}
    # The Application Insights connection string only identifies the component (local auth is off: no key works).
    assert with_connection_strings == {"APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert values["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].endswith("Authorization=AAD'")


def test_connections_are_identity_based_with_the_user_assigned_identity():
    values = app_settings()
    for prefix in ("AzureWebJobsStorage", "SERVICEBUS"):
        assert values[f"{prefix}__credential"] == "managedidentity"
        assert values[f"{prefix}__clientId"] == "identityClientId"
    assert values["AZURE_CLIENT_ID"] == "identityClientId"
    assert values["SERVICEBUS__fullyQualifiedNamespace"] == "serviceBusFullyQualifiedNamespace"
    assert values["QUEUE_BACKEND"] == "servicebus" and values["AUDIT_BACKEND"] == "table"
    assert values["GRAPH_AUTH"] == "managed_identity"


def test_the_webhook_secret_is_a_key_vault_reference():
    value = app_settings()["WEBHOOK_SECRET"]
    assert re.fullmatch(r"'@Microsoft\.KeyVault\(SecretUri=\$\{webhookSecretUri\}\)'", value), value
    site = next(r for r in resources(FUNCTION_APP) if r.kind == "Microsoft.Web/sites")
    assert object_nodes(object_nodes(site.body)["properties"])["keyVaultReferenceIdentity"].text == b"identityId"


def test_function_app_is_flex_consumption_linux_python_313_with_the_user_assigned_identity():
    by_kind = {r.kind: r for r in resources(FUNCTION_APP)}
    plan = by_kind["Microsoft.Web/serverfarms"].value()
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan["properties"]["reserved"] is True
    site = by_kind["Microsoft.Web/sites"].value()
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.13"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert site["properties"]["httpsOnly"] is True
    # Flex takes runtime and version from functionAppConfig; these settings are rejected there.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(app_settings())


def test_queue_has_duplicate_detection_dead_lettering_and_bounded_deliveries():
    queue = next(r for r in resources(INFRA / "modules" / "servicebus.bicep") if r.kind.endswith("/queues")).value()
    props = queue["properties"]
    assert props["requiresDuplicateDetection"] is True
    assert props["deadLetteringOnMessageExpiration"] is True
    assert {"duplicateDetectionHistoryTimeWindow", "maxDeliveryCount", "lockDuration"} <= set(props)
    module = INFRA / "modules" / "servicebus.bicep"
    assert parameter_default(module, "lockDuration") == "PT5M"  # the Service Bus maximum; the host renews it
    assert parameter_default(module, "duplicateDetectionWindow") == "P1D"  # a re-run scan the same day queues nothing twice
    namespace = next(r for r in resources(module) if r.kind == "Microsoft.ServiceBus/namespaces").value()
    assert namespace["sku"]["name"] == "Standard" and namespace["properties"]["disableLocalAuth"] is True


def test_one_max_delivery_count_feeds_the_queue_and_the_worker_setting():
    main = INFRA / "main.bicep"
    modules = declarations(main, "module_declaration")
    sb_params = object_value(object_nodes(modules["serviceBus"].named_children[-1])["params"])
    app_params = object_value(object_nodes(modules["functionApp"].named_children[-1])["params"])
    assert sb_params["maxDeliveryCount"] == app_params["maxDeliveryCount"] == "maxDeliveryCount"
    assert app_settings()["SERVICEBUS_MAX_DELIVERY_COUNT"] == "string(maxDeliveryCount)"


def test_storage_and_monitoring_have_local_auth_off():
    storage = next(r for r in resources(INFRA / "modules" / "storage.bicep") if r.kind == "Microsoft.Storage/storageAccounts")
    props = storage.value()["properties"]
    assert props["allowSharedKeyAccess"] is False and props["allowBlobPublicAccess"] is False
    tables = [r for r in resources(INFRA / "modules" / "storage.bicep") if r.kind.endswith("/tables")]
    assert {t.value()["name"] for t in tables} == {"auditTableName", "budgetTableName"}
    monitoring = {r.kind: r.value() for r in resources(INFRA / "modules" / "monitoring.bicep")}
    assert monitoring["Microsoft.Insights/components"]["properties"]["DisableLocalAuth"] is True
    assert monitoring["Microsoft.OperationalInsights/workspaces"]["properties"]["features"]["disableLocalAuth"] is True
    vault = next(r for r in resources(INFRA / "modules" / "keyvault.bicep") if r.kind == "Microsoft.KeyVault/vaults").value()
    assert vault["properties"]["enableRbacAuthorization"] is True


ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
READER_ROLE = "76199698-9eea-4c19-bc75-cec21354c6b6"  # Storage Table Data Reader: the optional audit reviewer


def test_role_assignments_are_named_with_guid_and_cover_every_needed_role():
    path = INFRA / "modules" / "roles.bicep"
    role_vars = object_value(variable(path, "roles"))
    assert set(role_vars.values()) == set(ROLE_IDS) | {READER_ROLE}, "roles.bicep should grant exactly the documented roles"
    assignments = [r for r in resources(path) if r.kind == "Microsoft.Authorization/roleAssignments"]
    granted: dict[str, set[str]] = {"principalId": set(), "reviewerPrincipalId": set()}
    for assignment in assignments:
        value = assignment.value()
        assert value["name"].startswith("guid("), f"{assignment.symbol}: role assignment names must come from guid()"
        role_ref = value["properties"]["roleDefinitionId"]
        used = re.search(r"roles\.(\w+)", role_ref)
        assert used, role_ref
        assert used.group(1) in value["name"], f"{assignment.symbol}: the guid() must include the role"
        assert value["properties"]["principalId"] in value["name"], f"{assignment.symbol}: the guid() must include the principal"
        principal = value["properties"]["principalId"]
        if principal == "principalId":
            assert value["properties"]["principalType"] == "ServicePrincipal"
        granted[principal].add(role_vars[used.group(1)])
    assert granted["principalId"] == set(ROLE_IDS), "the app's identity gets exactly the roles it needs"
    assert granted["reviewerPrincipalId"] == {READER_ROLE}, "the reviewer reads the audit log, nothing more"


def test_parameters_file_matches_main_bicep():
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = declarations(INFRA / "main.bicep", "parameter_declaration")
    assert set(params) <= set(declared), f"unknown parameters: {sorted(set(params) - set(declared))}"
    required = {name for name, node in declared.items() if len(node.named_children) < 3}
    assert required <= set(params), f"parameters without default that azd cannot fill: {sorted(required - set(params))}"


def test_bicep_defaults_agree_with_the_code_defaults():
    by_name = {s.name: s for s in SETTINGS}
    main = INFRA / "main.bicep"
    pairs = {
        "SCAN_SCHEDULE": "scanSchedule",
        "SERVICEBUS_QUEUE_NAME": "queueName",
        "AUDIT_TABLE_NAME": "auditTableName",
        "BUDGET_TABLE_NAME": "budgetTableName",
        "JANITOR_KILL_SWITCH": "killSwitch",
        "SERVICEBUS_MAX_DELIVERY_COUNT": "maxDeliveryCount",
        "GRAPH_WRITE_WINDOW_SECONDS": "graphWriteWindowSeconds",
        "GRAPH_MAX_ATTEMPTS": "graphMaxAttempts",
        "GRAPH_MAX_RETRY_SECONDS": "graphMaxRetrySeconds",
    }
    for setting, param in pairs.items():
        assert str(parameter_default(main, param)) == by_name[setting].default, f"{param} vs {setting}"


def test_main_outputs_what_the_grant_script_and_docs_use():
    outputs = declarations(INFRA / "main.bicep", "output_declaration")
    assert {"AZURE_MANAGED_IDENTITY_PRINCIPAL_ID", "AZURE_FUNCTION_APP_NAME", "AZURE_RESOURCE_GROUP"} <= set(outputs)
    assert literal(outputs["AZURE_MANAGED_IDENTITY_PRINCIPAL_ID"].named_children[-1]) == "identity.outputs.principalId"
