"""Device classification: pure rules, first match wins, each with the evidence that made it match.

    from shared.classify import ClassifyContext, classify, propose_action
"""

from __future__ import annotations

from shared.classify.actions import is_device_write, propose_action
from shared.classify.classify import classify, classify_duplicate, classify_head, classify_tail
from shared.classify.model import (
    CANDIDATE_CLASSES,
    CLASS_NAMES,
    HEALTHY,
    MIN_STALE_DAYS,
    ClassifyContext,
    DeviceClass,
    Finding,
    MappingSiblings,
    Newest,
    SiblingIndex,
    newest_index,
)
from shared.classify.registration import (
    decode_key,
    has_x509_key,
    is_hybrid,
    is_pending,
    is_registration_unclear,
    sync_carries,
)
from shared.classify.rules import (
    RULES,
    RuleSpec,
    duplicate,
    duplicate_key,
    expired_disabled,
    hardware_identity,
    kept,
    may_be_older_duplicate,
    no_signin_record,
    pending,
    protected,
    reactivated,
    registration_unclear,
    sibling_registered,
    siblings_of,
    stale,
    unmanaged,
)

__all__ = [
    "CANDIDATE_CLASSES",
    "CLASS_NAMES",
    "HEALTHY",
    "MIN_STALE_DAYS",
    "RULES",
    "ClassifyContext",
    "DeviceClass",
    "Finding",
    "MappingSiblings",
    "Newest",
    "RuleSpec",
    "SiblingIndex",
    "classify",
    "classify_duplicate",
    "classify_head",
    "classify_tail",
    "decode_key",
    "duplicate",
    "duplicate_key",
    "expired_disabled",
    "hardware_identity",
    "has_x509_key",
    "is_device_write",
    "is_hybrid",
    "is_pending",
    "is_registration_unclear",
    "kept",
    "may_be_older_duplicate",
    "newest_index",
    "no_signin_record",
    "pending",
    "propose_action",
    "protected",
    "reactivated",
    "registration_unclear",
    "sibling_registered",
    "siblings_of",
    "stale",
    "sync_carries",
    "unmanaged",
]
