"""Test-only helpers: servers and brokers the tests run in-process."""
