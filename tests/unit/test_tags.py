from datetime import UTC, datetime

from shared import tags


def test_tag_round_trips():
    tag = tags.Tag("disabled", datetime(2026, 8, 1, 2, 0, tzinfo=UTC), "stale", "run-1")
    assert tags.parse(tag.render()) == tag


def test_foreign_or_malformed_values_are_not_ours():
    assert tags.parse(None) is None
    assert tags.parse("CostCenter42") is None
    assert tags.parse("entra-janitor|disabled|yesterday|stale|run-1") is None
    assert tags.parse("entra-janitor|disabled|2026-08-01T02:00:00Z|stale") is None
