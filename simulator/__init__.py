"""A Microsoft Graph v1.0 tenant simulator for the endpoints entra-janitor uses, with a seeded fleet and its
ground truth. See docs/simulator.md.

    tenant = Tenant.generate(devices=20_000, seed=7)
    async with run_simulator(tenant) as sim:
        ...  # point the Graph client at sim.base_url
"""

from simulator.auth import make_token
from simulator.faults import Faults
from simulator.limits import Limits
from simulator.pipeline import Stats
from simulator.server import RunningSimulator, SimulatorProcess, SimulatorThread, run_simulator
from simulator.tenant import Tenant, WriteRecord
from simulator.truth import CLASSES, FLAGS, GroundTruth

__all__ = [
    "CLASSES",
    "FLAGS",
    "Faults",
    "GroundTruth",
    "Limits",
    "RunningSimulator",
    "SimulatorProcess",
    "SimulatorThread",
    "Stats",
    "Tenant",
    "WriteRecord",
    "make_token",
    "run_simulator",
]
