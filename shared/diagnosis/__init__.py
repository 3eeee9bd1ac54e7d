"""Stage diagnosis of a device that "failed to join", and the `dsregcmd /status` parser.

    from shared.diagnosis import diagnose_device, diagnose, Diagnosis, parse_dsregcmd

`diagnose(facts)` is the pure engine; `diagnose_device(graph, device_ref, ...)` gathers the facts through
the Graph port first. Stages: 1 eligibility, 2 pending object, 3 local/tenant mismatch, 4 registration
transaction (connectivity), 5 downstream (PRT, MDM, compliance), or "healthy".
"""

from __future__ import annotations

from shared.diagnosis.catalogue import CatalogueEntry, lookup
from shared.diagnosis.dsregcmd import DsregcmdParseError, DsregStatus, ErrorCodeRef, PrtDiagnostics
from shared.diagnosis.dsregcmd import parse as parse_dsregcmd
from shared.diagnosis.engine import diagnose
from shared.diagnosis.gather import choose_device, diagnose_device, gather_facts
from shared.diagnosis.model import STAGE_TITLES, CodeInfo, DeviceSummary, Diagnosis, Evidence, Facts, StaleDevice

__all__ = [
    "STAGE_TITLES",
    "CatalogueEntry",
    "CodeInfo",
    "DeviceSummary",
    "Diagnosis",
    "DsregStatus",
    "DsregcmdParseError",
    "ErrorCodeRef",
    "Evidence",
    "Facts",
    "PrtDiagnostics",
    "StaleDevice",
    "choose_device",
    "diagnose",
    "diagnose_device",
    "gather_facts",
    "lookup",
    "parse_dsregcmd",
]
