"""App settings the Functions host and the Azure SDKs read, not the project's code.

`shared/settings.py` declares every setting the code reads. The deployment also sets a few that only the
platform reads (identity-based host storage, the Service Bus trigger's connection, telemetry auth); they are
declared here so the infra test can tell a known platform setting from a typo, and so the sample settings
file can document the local-only host settings as well.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlatformSetting:
    name: str
    help: str


#: Set by infra/ in Azure, read by the Functions host or an SDK.
AZURE_PLATFORM_SETTINGS: tuple[PlatformSetting, ...] = (
    PlatformSetting("AzureWebJobsStorage__accountName", "Host storage account, identity-based (no connection string)."),
    PlatformSetting("AzureWebJobsStorage__credential", "managedidentity: the host reaches its storage with the identity."),
    PlatformSetting("AzureWebJobsStorage__clientId", "Client id of the user-assigned identity the host storage connection uses."),
    PlatformSetting("AzureWebJobsStorage__blobServiceUri", "Blob endpoint of the host storage (timer leases, app package)."),
    PlatformSetting("AzureWebJobsStorage__queueServiceUri", "Queue endpoint of the host storage."),
    PlatformSetting("AzureWebJobsStorage__tableServiceUri", "Table endpoint of the host storage."),
    PlatformSetting("SERVICEBUS__credential", "managedidentity: connection SERVICEBUS of the worker trigger uses the identity."),
    PlatformSetting("SERVICEBUS__clientId", "Client id of the user-assigned identity the worker trigger connects with."),
    PlatformSetting(
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "ClientId=<id>;Authorization=AAD: the host and the exporter ingest telemetry with Entra ID (local auth is off).",
    ),
)

#: What `func start` needs locally (Azure sets the runtime in the Flex plan's functionAppConfig instead).
LOCAL_HOST_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("FUNCTIONS_WORKER_RUNTIME", "python", "Local Functions host only: the language worker to start."),
    ("AzureWebJobsStorage", "UseDevelopmentStorage=true", "Local Functions host only: Azurite as the host storage."),
)

AZURE_PLATFORM_NAMES: frozenset[str] = frozenset(s.name for s in AZURE_PLATFORM_SETTINGS)
