"""Policy-as-code: the YAML file that says what the scan looks for and what the worker may do.

    from shared.policy import Policy, load_policy, policy_hash, PolicyError
"""

from __future__ import annotations

from shared.policy.defaults import DEFAULT_POLICY
from shared.policy.loader import (
    PolicyError,
    Problem,
    check_policy,
    check_policy_text,
    dump_policy,
    load_policy,
    parse_policy,
    policy_from_data,
    policy_schema,
    read_policy_file,
    schema_path,
)
from shared.policy.model import (
    MIN_DELETE_AFTER_DISABLED_DAYS,
    MIN_DISABLE_AFTER_DAYS,
    MIN_DUPLICATE_INACTIVE_DAYS,
    DuplicatePolicy,
    GatesPolicy,
    KeepPolicy,
    LimitsPolicy,
    NotifyPolicy,
    PendingPolicy,
    Policy,
    ProtectPolicy,
    StalePolicy,
    TagPolicy,
    policy_hash,
)

__all__ = [
    "DEFAULT_POLICY",
    "MIN_DELETE_AFTER_DISABLED_DAYS",
    "MIN_DISABLE_AFTER_DAYS",
    "MIN_DUPLICATE_INACTIVE_DAYS",
    "DuplicatePolicy",
    "GatesPolicy",
    "KeepPolicy",
    "LimitsPolicy",
    "NotifyPolicy",
    "PendingPolicy",
    "Policy",
    "PolicyError",
    "Problem",
    "ProtectPolicy",
    "StalePolicy",
    "TagPolicy",
    "check_policy",
    "check_policy_text",
    "dump_policy",
    "load_policy",
    "parse_policy",
    "policy_from_data",
    "policy_hash",
    "policy_schema",
    "read_policy_file",
    "schema_path",
]
