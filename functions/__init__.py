"""Thin trigger modules. Each exposes `bp`, a func.Blueprint; they parse input, call shared, return."""

from __future__ import annotations

import importlib
import pkgutil

import azure.functions as func


def _blueprints() -> list[func.Blueprint]:
    found: list[func.Blueprint] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if not module.startswith("_"):
            found.append(importlib.import_module(f"{__name__}.{module}").bp)
    return found


BLUEPRINTS: list[func.Blueprint] = _blueprints()
