"""Shared fixtures live in tests/fixtures/ as pytest plugins, one module per real component."""

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.azurite",
    "tests.fixtures.amqp",
    "tests.fixtures.env",
]
