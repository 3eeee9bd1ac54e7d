"""entra-janitor core: decisions, ports and adapters. Imports nothing from Azure Functions."""

__version__ = "0.1.0"
