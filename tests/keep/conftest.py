"""The keep tests use the audit tests' headless Chromium fixture (Debian chromium-headless-shell, `make test`) and
the worker tests' SQLite audit log."""

from tests.audit.conftest import chromium
from tests.worker.conftest import audit

__all__ = ["audit", "chromium"]
