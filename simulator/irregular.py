"""Devices whose deviceId does not start with a hex digit (null, or a GUID in braces), added on request.

Real directories hold a few such objects (old tooling, migrations); the scan reaches them through its
non-hex partition, and a read that missed them would not add up to /devices/$count. They are opt-in
(`janitor simulate --irregular-device-ids N`, `SimulatorProcess(irregular_device_ids=N)`), so the seeded
fleet and its ground truth stay what they are unless asked; each one added is in the ground truth.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from simulator.tenant import Tenant


def irregular_device_id(n: int, rng: random.Random) -> str | None:
    """Alternately null and an upper-case GUID in braces: neither starts with a hex digit."""
    if n % 2 == 0:
        return None
    return "{" + str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper() + "}"


def add_irregular_devices(tenant: Tenant, count: int) -> list[str]:
    """Add `count` Entra joined Windows devices with irregular deviceIds (every third one stale); their object ids."""
    rng = random.Random(f"entra-janitor-simulator:irregular:{tenant.seed}")
    added = []
    for n in range(count):
        stale = n % 3 == 2
        object_id = tenant.add_device(
            display_name=f"IRREGULAR-{n:04d}",
            expected_class="stale" if stale else "healthy",
            last_sign_in=tenant.now - timedelta(days=200 if stale else 3),
            registered_at=tenant.now - timedelta(days=400),
        )
        tenant.update_device(object_id, deviceId=irregular_device_id(n, rng))
        added.append(object_id)
    return added
