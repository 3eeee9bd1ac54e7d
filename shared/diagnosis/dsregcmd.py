"""Read `dsregcmd /status` output into the tool's own field names, plus the error codes it reports.

The output changed across Windows 10 and 11 releases: older builds print one "Device State" block with
`Key: Value`, newer ones split it into sections (Device State, Device Details, Tenant Details, User State,
SSO State, Diagnostic Data, ...) with right-aligned `Key : Value`. Fields can be blank, keys can contain
spaces ("Client ErrorCode"), values can contain colons (URLs, times), and files saved from PowerShell are
UTF-16. The parser accepts all of that and keys everything by the field name dsregcmd printed.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from shared.errors import JanitorError

MAX_BYTES = 1_000_000  # real output is ~10 KB; anything this large is not dsregcmd output

#: Fields at least one of which every dsregcmd /status output carries.
ANCHOR_FIELDS = ("AzureAdJoined", "DomainJoined", "EnterpriseJoined", "WorkplaceJoined", "DeviceId", "TenantId", "AzureAdPrt")
#: Fields of a PRT acquisition/refresh diagnostics block (Windows 10 21H1 and later).
PRT_BLOCK_FIELDS = frozenset(
    key.replace(" ", "").lower()
    for key in (
        "Previous Prt Attempt",
        "Attempt Status",
        "User Identity",
        "Credential Type",
        "Correlation ID",
        "Endpoint URI",
        "HTTP Method",
        "HTTP Error",
        "HTTP status",
        "Server Error Code",
        "Server Error Description",
    )
)

_BORDER = re.compile(r"^\s*\+[-=+]*\+?\s*$")
# Key: letters first, then letters/digits/spaces/punctuation, up to the first colon (ASCII or full width).
_FIELD = re.compile(r"^\s*(?P<key>[^\W\d_][\w \-./()']{0,60}?)\s*[:\uff1a](?P<value>.*)$")
_HEX = re.compile(r"\b0x[0-9a-fA-F]{1,8}\b")


class DsregcmdParseError(JanitorError):
    """The text is not `dsregcmd /status` output; the message says what was expected."""


class ErrorCodeRef(msgspec.Struct, frozen=True, kw_only=True):
    """An HRESULT/NTSTATUS seen in the output. `subcode_of` is set for the second code of `FAIL [a/b]`."""

    code: str  # normalised: 0x + 8 lowercase hex digits
    field: str
    section: str | None = None
    subcode_of: str | None = None


class PrtDiagnostics(msgspec.Struct, frozen=True, kw_only=True):
    """One AcquirePrtDiagnostics / RefreshPrtDiagnostics block: the last failed PRT attempt."""

    kind: str  # AcquirePrtDiagnostics | RefreshPrtDiagnostics
    prt: str | None  # AzureAdPrt | EnterprisePrt: which token the block belongs to
    fields: dict[str, str | None]


class DsregStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed `dsregcmd /status`. `fields` holds the first value printed for each field name."""

    fields: dict[str, str | None]
    sections: dict[str, dict[str, str | None]]
    error_codes: list[ErrorCodeRef]
    prt_diagnostics: list[PrtDiagnostics]
    tests: dict[str, str | None]  # pre-join diagnostic tests ("DRS Discovery Test": "FAIL [0x801c0021/...]")

    # ------------------------------------------------------------------ lookups

    def value(self, name: str) -> str | None:
        """A field by name, ignoring case and spaces ("HTTP status" == "HTTP Status")."""
        wanted = _norm(name)
        for key, value in self.fields.items():
            if _norm(key) == wanted:
                return value
        return None

    def flag(self, name: str) -> bool | None:
        """YES/NO fields as booleans; None when absent, blank or anything else."""
        value = (self.value(name) or "").strip().upper()
        return True if value == "YES" else False if value == "NO" else None

    @property
    def azure_ad_joined(self) -> bool | None:
        return self.flag("AzureAdJoined")

    @property
    def domain_joined(self) -> bool | None:
        return self.flag("DomainJoined")

    @property
    def workplace_joined(self) -> bool | None:
        return self.flag("WorkplaceJoined")

    @property
    def enterprise_joined(self) -> bool | None:
        return self.flag("EnterpriseJoined")

    @property
    def azure_ad_prt(self) -> bool | None:
        return self.flag("AzureAdPrt")

    @property
    def device_id(self) -> str | None:
        return _guid(self.value("DeviceId"))

    @property
    def tenant_id(self) -> str | None:
        return _guid(self.value("TenantId"))

    @property
    def device_auth_status(self) -> str | None:
        return self.value("DeviceAuthStatus")

    @property
    def join_type(self) -> str:
        """hybrid | entra_joined | domain_only | registered | enterprise_drs | not_joined (as the device sees it)."""
        if self.azure_ad_joined and self.domain_joined:
            return "hybrid"
        if self.azure_ad_joined:
            return "entra_joined"
        if self.enterprise_joined:
            return "enterprise_drs"
        if self.domain_joined:
            return "domain_only"
        if self.workplace_joined:
            return "registered"
        return "not_joined"

    @property
    def user_upn(self) -> str | None:
        """The signed-in user's UPN when the output names one (Executing Account Name, User Identity)."""
        for name in ("Executing Account Name", "User Identity"):
            for token in re.split(r"[\s,;]+", self.value(name) or ""):
                if "@" in token:
                    return token.strip()
        return None

    def failed_tests(self) -> dict[str, str]:
        """Diagnostic tests whose result starts with FAIL."""
        return {k: v for k, v in self.tests.items() if v and v.strip().upper().startswith("FAIL")}

    def to_json(self) -> dict[str, Any]:
        """The `janitor dsregcmd --json` object: dsregcmd's field names, then ErrorCodes/PrtDiagnostics/Sections."""
        out: dict[str, Any] = dict(self.fields)
        out["ErrorCodes"] = msgspec.to_builtins(self.error_codes)
        out["PrtDiagnostics"] = msgspec.to_builtins(self.prt_diagnostics)
        out["Sections"] = self.sections
        return out


def _norm(name: str) -> str:
    return name.replace(" ", "").lower()


def _guid(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().strip("{}").strip().lower() or None


def _section_name(line: str) -> str | None:
    r"""`| Device State |` -> "Device State"; None when the line is not a section header.

    Plain string checks, not a regular expression: `^\s*\|\s*([^|]*?)\s*\|\s*$` backtracks in cubic time on a
    line such as "|" followed by thousands of spaces (seconds for 2,000 characters, hours for 64 KB).
    """
    text = line.strip()
    if len(text) < 2 or text[0] != "|" or text[-1] != "|" or "|" in text[1:-1]:
        return None
    return text[1:-1].strip()


def normalise_code(text: str) -> str:
    """'0x801C03F2' -> '0x801c03f2' (8 hex digits, lowercase)."""
    return "0x" + format(int(text, 16), "08x")


def decode_text(data: bytes | str) -> str:
    """Text from a file or request body: UTF-16 (PowerShell redirection), UTF-8 (with or without BOM), else cp1252."""
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    if len(data) > MAX_BYTES:
        raise DsregcmdParseError(f"input is {len(data):,} bytes; dsregcmd /status output is a few KB (limit {MAX_BYTES:,})")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # damaged UTF-16 (odd length, lone surrogates) is replaced, not fatal
        return data.decode("utf-16", errors="replace").lstrip("\ufeff")
    if data[:200].count(b"\x00") > 20:  # UTF-16 without a BOM
        return data.decode("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse(data: bytes | str) -> DsregStatus:
    """Parse `dsregcmd /status` output. Raises DsregcmdParseError saying what was expected."""
    text = decode_text(data)
    if len(text) > MAX_BYTES:
        raise DsregcmdParseError(f"input is {len(text):,} characters; dsregcmd /status output is a few KB")
    if "\x00" in text:
        raise DsregcmdParseError("input contains NUL characters: it is binary, not dsregcmd /status text")
    fields: dict[str, str | None] = {}
    sections: dict[str, dict[str, str | None]] = {}
    codes: list[ErrorCodeRef] = []
    blocks: list[PrtDiagnostics] = []
    tests: dict[str, str | None] = {}
    section: str | None = None
    prt_owner: str | None = None
    block: PrtDiagnostics | None = None

    for line in text.splitlines():
        if not line.strip() or _BORDER.match(line):
            continue
        header = _section_name(line)
        if header is not None:
            section = header or None
            block = None
            continue
        match = _FIELD.match(line)
        if not match:
            continue
        key = " ".join(match["key"].split())
        value = match["value"].strip()
        value = value.lstrip(":\uff1a").strip() if value.startswith((":", "\uff1a")) else value  # "KeySignTest: : ..."
        stored: str | None = value or None
        norm = _norm(key)

        if norm in ("azureadprt", "enterpriseprt"):
            prt_owner = key
        if norm in ("acquireprtdiagnostics", "refreshprtdiagnostics"):
            block = PrtDiagnostics(kind=key, prt=prt_owner, fields={})
            blocks.append(block)
        elif block is not None and norm in PRT_BLOCK_FIELDS:
            block.fields.setdefault(key, stored)
        else:
            block = None

        fields.setdefault(key, stored)
        if section is not None:
            sections.setdefault(section, {}).setdefault(key, stored)
        if key.lower().endswith(" test"):
            tests.setdefault(key, stored)
        found = [normalise_code(h) for h in _HEX.findall(value)]
        found = [c for c in found if c != "0x00000000"]
        for i, code in enumerate(found):
            codes.append(ErrorCodeRef(code=code, field=key, section=section, subcode_of=found[0] if i else None))

    present = {_norm(k) for k in fields}
    if not any(_norm(a) in present for a in ANCHOR_FIELDS):
        raise DsregcmdParseError(
            "not dsregcmd /status output: none of the fields "
            f"{', '.join(ANCHOR_FIELDS)} was found (expected lines such as 'AzureAdJoined : YES'); "
            "attach the full output of `dsregcmd /status` run on the device"
        )
    return DsregStatus(fields=fields, sections=sections, error_codes=codes, prt_diagnostics=blocks, tests=tests)
