"""`classify()`: walk the rules in order, first match wins.

The scan splits the walk at the fleet-wide duplicate rule: `classify_head` (rules before it) runs as each
page streams in, `classify_tail` (rules after it) gives the class a device has unless it turns out to be a
duplicate, and the duplicate rule itself runs once the fleet view exists. `classify()` is the three in order.
"""

from __future__ import annotations

from shared.classify.model import HEALTHY, ClassifyContext, DeviceClass, Finding
from shared.classify.rules import RULES, Rule, RuleSpec
from shared.models import Device

_SPLIT = next(i for i, spec in enumerate(RULES) if spec.fleet)
HEAD: tuple[RuleSpec, ...] = RULES[:_SPLIT]
FLEET: RuleSpec = RULES[_SPLIT]
TAIL: tuple[RuleSpec, ...] = RULES[_SPLIT + 1 :]

_Pairs = tuple[tuple[Rule, DeviceClass], ...]
_HEAD: _Pairs = tuple((spec.check, spec.device_class) for spec in HEAD)
_FLEET: _Pairs = ((FLEET.check, FLEET.device_class),)
_TAIL: _Pairs = tuple((spec.check, spec.device_class) for spec in TAIL)


def _first_match(device: Device, ctx: ClassifyContext, rules: _Pairs) -> Finding | None:
    for check, device_class in rules:
        evidence = check(device, ctx)
        if evidence is not None:
            return Finding(device_class, evidence)
    return None


def classify_head(device: Device, ctx: ClassifyContext) -> Finding | None:
    """The rules before the duplicate rule; a match here is final."""
    return _first_match(device, ctx, _HEAD)


def classify_duplicate(device: Device, ctx: ClassifyContext) -> Finding | None:
    """The duplicate rule alone (needs ctx.siblings)."""
    return _first_match(device, ctx, _FLEET)


def classify_tail(device: Device, ctx: ClassifyContext) -> Finding:
    """The rules after the duplicate rule, else healthy."""
    return _first_match(device, ctx, _TAIL) or HEALTHY


def classify(device: Device, ctx: ClassifyContext) -> Finding:
    """The device's class and evidence: the first rule that matches, in RULES order, else healthy."""
    return classify_head(device, ctx) or classify_duplicate(device, ctx) or classify_tail(device, ctx)
