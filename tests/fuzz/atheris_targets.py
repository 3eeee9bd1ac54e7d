"""Coverage-guided fuzzing (atheris, libFuzzer) of the payload parsers; run by bench/fuzz.py, never by pytest.

    python tests/fuzz/atheris_targets.py TARGET [libFuzzer flags, e.g. -runs=20000 -max_total_time=60]

TARGET: ticket_payload (decode_body + the generic/Jira/ServiceNow adapters), signature (verify never accepts
anything but the genuine header), dsregcmd (parse_dsregcmd), policy (parse_policy). Any exception other than
the parser's own refusal is a crash: libFuzzer stops, prints the input and exits non-zero.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["shared"]):
    from shared.diagnosis import DsregcmdParseError, parse_dsregcmd
    from shared.policy import PolicyError, parse_policy
    from shared.tickets.adapters import to_request
    from shared.tickets.intake import decode_body
    from shared.tickets.payloads import PayloadError, PayloadTooLarge
    from shared.tickets.signature import SignatureError, sign, verify

SECRET = b"atheris-secret-0123456789abcdefghijklmnop"
NOW = 1_750_000_000


def ticket_payload(data: bytes) -> None:
    with contextlib.suppress(PayloadError, PayloadTooLarge):
        to_request(decode_body(data), source=None)


def signature(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    header = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 300))
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        verify(SECRET, header, body, now=NOW)
    except SignatureError:
        return
    # accepted: the header must carry the genuine MAC of this body at a timestamp inside the window
    stamp = next(int(p.split("=", 1)[1]) for p in header.split(",") if p.strip().startswith("t="))
    genuine = sign(SECRET, body, stamp).split(",v1=")[1]
    assert genuine in header.lower() and abs(NOW - stamp) <= 300, f"forged header accepted: {header!r}"


def dsregcmd(data: bytes) -> None:
    with contextlib.suppress(DsregcmdParseError):
        parse_dsregcmd(data)


def policy(data: bytes) -> None:
    with contextlib.suppress(PolicyError):
        parse_policy(data.decode("utf-8", errors="replace"))


TARGETS = {"ticket_payload": ticket_payload, "signature": signature, "dsregcmd": dsregcmd, "policy": policy}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
