"""Device classification: pure rules, first match wins, each with the evidence that made it match.

    from shared.classify import ClassifyContext, classify, propose_action
"""

from __future__ import annotations

from shared.classify.actions import DESTRUCTIVE, is_destructive, propose_action
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
from shared.classify.registration import decode_key, has_x509_key, is_pending
from shared.classify.rules import (
    RULES,
    RuleSpec,
    duplicate,
    duplicate_key,
    expired_disabled,
    is_hybrid,
    is_windows,
    no_signin_record,
    pending,
    protected,
    sibling_sign_in,
    siblings_of,
    stale,
    unmanaged,
)

__all__ = [
    "CANDIDATE_CLASSES",
    "CLASS_NAMES",
    "DESTRUCTIVE",
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
    "has_x509_key",
    "is_destructive",
    "is_hybrid",
    "is_pending",
    "is_windows",
    "newest_index",
    "no_signin_record",
    "pending",
    "propose_action",
    "protected",
    "sibling_sign_in",
    "siblings_of",
    "stale",
    "unmanaged",
]
