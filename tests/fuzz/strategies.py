"""Hypothesis strategies for hostile input: forged signatures, hostile JSON, unicode tricks, SSRF-shaped
callback URLs, mangled `dsregcmd /status` output and policy YAML. Shared by tests/fuzz and bench/fuzz.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import string
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from shared.tickets import ACTIONS
from tests.tickets.helpers import SECRET

NOW = 1_750_000_000  # the server's clock (unix seconds) in the fuzz runs
WINDOW = 300
DSREGCMD_FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "dsregcmd").glob("*.txt"))


def mac(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def valid_header(body: bytes, at: int = NOW) -> str:
    return f"t={at},v1={mac(SECRET, str(at), body)}"


# --------------------------------------------------------------------------- webhook bodies

json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=24)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def generic(**fields: Any) -> dict[str, Any]:
    body = {"ticket_id": "INC-1", "device": "DESKTOP-1", "action": "diagnose", "requested_by": "helpdesk@contoso.com"}
    body.update(fields)
    return body


@st.composite
def valid_bodies(draw: st.DrawFn) -> bytes:
    """Well-formed generic payloads (the thing a forger would like to get accepted)."""
    body = generic(
        ticket_id=draw(st.text(string.ascii_uppercase + string.digits + "-", min_size=1, max_size=12)),
        action=draw(st.sampled_from([a for a in ACTIONS if a != "restore"])),  # restore needs a deleted device
        device=draw(st.sampled_from(["DESKTOP-1", "LAPTOP-9", "desktop-1"])),
    )
    return json.dumps(body).encode()


def _deep(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    # Jira's rich text (Atlassian Document Format) nested deep inside the device field (built as text: json.dumps
    # itself would hit the recursion limit)
    adf = '{"type":"paragraph","content":[' * depth + '{"type":"text","text":"DESKTOP-1"}' + "]}" * depth
    return (
        '{"webhookEvent":"jira:issue_created","issue":{"key":"IT-1","fields":{"customfield_10050":'
        '{"type":"doc","content":[' + adf + "]}}}}"
    ).encode()


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """Bodies built to break a parser: oversized, deeply nested, huge numbers, wrong types, bad encodings."""
    kind = draw(st.sampled_from(
        ["oversized", "deep", "bignum", "wrong_types", "surrogate", "encoding", "random_json", "bytes", "duplicate_keys"]
    ))
    if kind == "oversized":
        size = draw(st.integers(256 * 1024 - 64, 256 * 1024 + 4096))
        filler = "x" * max(0, size - 120)
        return json.dumps(generic(notes=filler)).encode()
    if kind == "deep":
        return _deep(draw(st.integers(50, 120_000)), draw(st.sampled_from(["list", "object", "adf"])))
    if kind == "bignum":
        digits = draw(st.integers(4000, 20_000))
        field = draw(st.sampled_from(["ticket_id", "device", "requested_by", "notes"]))
        return b'{"ticket_id":"INC-1","device":"DESKTOP-1","action":"diagnose","requested_by":"x",' + (
            f'"{field}":'.encode() + b"9" * digits + b"}"
        )
    if kind == "wrong_types":
        field = draw(st.sampled_from(["ticket_id", "device", "action", "requested_by", "user", "dsregcmd", "callback_url"]))
        return json.dumps(generic(**{field: draw(json_value)}), allow_nan=True).encode()
    if kind == "surrogate":  # lone UTF-16 surrogates are legal JSON escapes but cannot be stored as UTF-8
        field = draw(st.sampled_from(["ticket_id", "device", "requested_by", "user", "dsregcmd", "callback_url"]))
        escaped = draw(st.sampled_from(["\\ud800", "A\\udfffB", "\\udbff", "x\\ud83d", "AzureAdJoined : YES\\n\\ud800"]))
        return json.dumps(generic(**{field: "@@"})).replace('"@@"', f'"{escaped}"').encode()
    if kind == "encoding":
        text = json.dumps(generic())
        return draw(st.sampled_from([text.encode("utf-16"), text.encode("utf-32"), b"\xef\xbb\xbf" + text.encode(),
                                     text.encode("latin-1") + b"\xff", b"\x00" + text.encode()]))
    if kind == "random_json":
        return json.dumps(draw(json_value), allow_nan=True).encode()
    if kind == "duplicate_keys":
        return b'{"ticket_id":"INC-1","device":"DESKTOP-1","action":"diagnose","action":"delete","requested_by":"x"}'
    return draw(st.binary(max_size=300))


# --------------------------------------------------------------------------- signatures

@st.composite
def forgeries(draw: st.DrawFn, body: bytes) -> str:
    """X-Janitor-Signature values nobody holding the secret produced for this exact body and a fresh time."""
    kind = draw(st.sampled_from(
        ["random_text", "random_hex", "wrong_secret", "other_body", "stale", "future", "truncated", "flipped", "no_t",
         "no_v1", "v0_only", "many_wrong", "t_mismatch"]
    ))
    good = mac(SECRET, str(NOW), body)
    if kind == "random_text":
        return draw(st.text(max_size=200))
    if kind == "random_hex":
        return f"t={NOW},v1={draw(st.text('0123456789abcdef', min_size=64, max_size=64))}"
    if kind == "wrong_secret":
        secret = draw(st.binary(min_size=1, max_size=64).filter(lambda s: s != SECRET))
        return f"t={NOW},v1={mac(secret, str(NOW), body)}"
    if kind == "other_body":
        other = body + draw(st.binary(min_size=1, max_size=8)) if draw(st.booleans()) else body[:-1]
        return f"t={NOW},v1={mac(SECRET, str(NOW), other)}"
    if kind in ("stale", "future"):  # a genuine signature replayed outside the window
        offset = draw(st.integers(WINDOW + 1, 10**9))
        at = NOW - offset if kind == "stale" else NOW + offset
        return f"t={at},v1={mac(SECRET, str(at), body)}"
    if kind == "truncated":
        return f"t={NOW},v1={good[: draw(st.integers(0, 63))]}"
    if kind == "flipped":
        i = draw(st.integers(0, 63))
        return f"t={NOW},v1={good[:i]}{'0' if good[i] != '0' else '1'}{good[i + 1:]}"
    if kind == "no_t":
        return f"v1={good}"
    if kind == "no_v1":
        return f"t={NOW},v2={good}"
    if kind == "v0_only":
        return f"t={NOW},v0={good}"
    if kind == "many_wrong":
        junk = draw(st.lists(st.text("0123456789abcdef", min_size=64, max_size=64), min_size=1, max_size=20))
        return f"t={NOW}," + ",".join(f"v1={j}" for j in junk if j != good)
    # the mac of another timestamp presented with this one
    other = NOW - draw(st.integers(1, WINDOW))
    return f"t={NOW},v1={mac(SECRET, str(other), body)}"


# --------------------------------------------------------------------------- unicode tricks in names

HOMOGLYPHS = {"E": "\u0415", "O": "\u041e", "P": "\u0420", "K": "\u041a", "T": "\u0422", "S": "\u0405", "1": "\u0661",
              "-": "\u2010"}
INVISIBLE = ["\u202e", "\u202d", "\u2066", "\u200b", "\u200d", "\ufeff", "\u00ad", "\u2028", "\x00", "\x1b", "\x85", "\u180e"]


@st.composite
def tricky_names(draw: st.DrawFn) -> tuple[str, str]:
    """(name, trick): a device name that looks like DESKTOP-1 (or another real one) but is not that string."""
    base = draw(st.sampled_from(["DESKTOP-1", "LAPTOP-9"]))
    trick = draw(st.sampled_from(["homoglyph", "invisible", "fullwidth", "combining", "rtl_wrap", "nul_suffix"]))
    chars = list(base)
    if trick == "homoglyph":
        spots = [i for i, c in enumerate(chars) if c in HOMOGLYPHS]
        for i in draw(st.lists(st.sampled_from(spots), min_size=1, max_size=3, unique=True)):
            chars[i] = HOMOGLYPHS[chars[i]]
    elif trick == "invisible":
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(INVISIBLE)))
    elif trick == "fullwidth":
        i = draw(st.integers(0, len(chars) - 1))
        chars[i] = chr(ord(chars[i]) + 0xFEE0) if "!" <= chars[i] <= "~" else chars[i] + "\uff0d"
    elif trick == "combining":
        chars.insert(draw(st.integers(1, len(chars))), draw(st.sampled_from(["\u0301", "\u0338", "\u20dd"])))
    elif trick == "rtl_wrap":
        chars = ["\u202e", *reversed(chars), "\u202c"]
    else:
        chars.append("\x00")
    return "".join(chars), trick


# --------------------------------------------------------------------------- callback URLs

ALLOWLIST = "hooks.example.com, *.contoso.com, 127.0.0.1:8443"
SSRF_HOSTS = [
    "127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "017700000001", "0", "0.0.0.0", "[::1]", "[::]",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "169.254.169.254", "[::ffff:169.254.169.254]", "[fe80::1]", "[fe80::1%25eth0]",
    "168.63.129.16", "100.100.100.200", "[fd00:ec2::254]", "metadata.google.internal", "169.254.169.254.nip.io",
    "hooks.example.com.evil.net", "evil.net", "hooks.example.com\uff0eevil.net", "hooks\u3002example.com", "xn--hooks-9ya.com",
    "contoso.com", "evilcontoso.com", "a.contoso.com.evil.net", "HOOKS.EXAMPLE.COM", "hooks.example.com.", "127.0.0.1",
]
URL_SHAPES = [
    "https://{host}/cb", "http://{host}/cb", "https://{host}:8443/cb", "https://user:pw@{host}/cb", "https://hooks.example.com@{host}/",
    "https://{host}@hooks.example.com/", "https://{host}\\@hooks.example.com/", "https://{host}#@hooks.example.com/",
    "https://{host}%2F@hooks.example.com/", "https://{host}:443@hooks.example.com/", "//{host}/cb", "{host}/cb",
    "https:/{host}/cb", "https://{host}/../cb", "ftp://{host}/", "gopher://{host}/", "file:///etc/passwd", "javascript:alert(1)",
    "https://{host}:0/", "https://{host}:99999/", "https://{host}:-1/", "https://[{host}]/",
]


@st.composite
def callback_urls(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(URL_SHAPES))
    host = draw(st.sampled_from(SSRF_HOSTS) | st.text(string.ascii_lowercase + ".-", min_size=1, max_size=20)
                | st.sampled_from(["hooks.example.com", "a.contoso.com"]))
    url = shape.format(host=host)
    if draw(st.booleans()):
        i = draw(st.integers(0, len(url)))
        url = url[:i] + draw(st.sampled_from(["\t", "\n", " ", "\u200b", "%00", "\\", "@", "#", "?", "%40", "\u3002"])) + url[i:]
    return url


ip_addresses = st.ip_addresses().map(str) | st.sampled_from(
    ["127.0.0.1", "127.8.9.10", "169.254.169.254", "168.63.129.16", "0.0.0.0", "::1", "::", "fe80::1", "::ffff:127.0.0.1",
     "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "::169.254.169.254", "2002:a9fe:a9fe::1",
     "2001:0:4136:e378:8000:63bf:5601:5601", "224.0.0.1", "ff02::1", "fd00:ec2::254", "100.100.100.200", "10.0.0.5",
     "93.184.216.34"]
)


# --------------------------------------------------------------------------- dsregcmd output

@st.composite
def dsregcmd_texts(draw: st.DrawFn) -> str | bytes:
    """Real dsregcmd fixtures, mangled; or free text; or raw bytes in odd encodings."""
    kind = draw(st.sampled_from(["mutated", "mutated", "text", "bytes", "pathological"]))
    if kind == "text":
        return draw(st.text(max_size=2000))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    if kind == "pathological":  # lines shaped to make a backtracking regular expression slow
        n = draw(st.integers(1000, 60_000))
        line = draw(st.sampled_from(["|" + " " * n, "|" + "a " * (n // 2), "A" + " " * n + "x", " " * n + "+", "A" * n + ":",
                                     "+" + "-" * n + "x", "0x" * (n // 2), "Ab" + "\t" * n, "|" * n, "A" + " :" * (n // 2)]))
        return line + "\n AzureAdJoined : YES\n"
    text = draw(st.sampled_from(DSREGCMD_FIXTURES)).read_text(encoding="utf-8")
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["drop", "dup", "insert", "replace_char", "crlf", "utf16", "truncate"]))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "drop" and lines:
            lines.pop(i)
        elif op == "dup" and lines:
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=120)))
        elif op == "replace_char" and lines and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:j] + draw(st.characters()) + lines[i][j + 1 :]
        elif op == "truncate":
            lines = lines[:i]
    out = "\r\n".join(lines) if draw(st.booleans()) else "\n".join(lines)
    if draw(st.booleans()):
        return out.encode(draw(st.sampled_from(["utf-16", "utf-8-sig", "cp1252"])), errors="replace")
    return out


# --------------------------------------------------------------------------- policy YAML

POLICY_KEYS = {
    "mode": ["report", "enforce", "delete", 1, None, True],
    "stale": [{"disable_after_days": 90}, {"disable_after_days": 14}, {"disable_after_days": "90"}, {"platforms": {"iOS": 10}},
              {"delete_after_disabled_days": 10**30}, {"non_windows_action": "nuke"}, [], None,
              {"platforms": {"iOS": 180, "ios": 90}}],
    "pending": [{"stuck_after_days": 3, "action": "delete"}, {"action": "notify"}, {"stuck_after_days": -1}],
    "protect": [{"autopilot": False}, {"name_patterns": ["KIOSK-*", "kiosk-*"]}, {"groups": ["not-a-guid"]}, {"groups": [1]}],
    "limits": [{"max_destructive_fraction": 0.9}, {"max_destructive_per_run": -5}, {"max_destructive_fraction": float("nan")}],
    "notify": [{"admins": ["not mail"]}, {"admins": ["a@b.com", "A@B.com"]}, {"digest": "yes"}],
    "gates": [{"intune_active_days": 0}, {"allow_delete_with_bitlocker_keys": "true"}],
    "tag": [{"attribute": 16}, {"attribute": 15}, {"attribute": True}],
    "schedule": ["0 0 2 * * *"],
    "extra_key": [1],
}

def alias_bomb(levels: int) -> str:
    """A "billion laughs" policy: each line refers four times to the one before, 4**levels values in all."""
    lines = ["stale:", "  platforms:", "    a: &a {x: 1, y: 1, z: 1, w: 1}"]
    names = [f"n{i}" for i in range(levels)]
    previous = "a"
    for name in names:
        lines.append(f"    {name}: &{name} {{p: *{previous}, q: *{previous}, r: *{previous}, s: *{previous}}}")
        previous = name
    return "\n".join(lines) + "\n"


#: YAML the loader must refuse (or accept) with a clear message, and does.
YAML_ATTACKS = [
    "a: &a [1]\nmode: *a\n",
    "? [a, b]\n: 1\n",
    "!!python/object/apply:os.system ['echo hi']\n",
    "mode: !!binary aGVsbG8=\n",
    "mode: 2001-12-14\n",
    "stale: {platforms: {2001-12-14: 90}}\n",
    "<<: {mode: enforce}\n",
    "mode: report\nmode: enforce\n",
    "[" * 200 + "]" * 200,
    "--- \n--- \n",
    "\t mode: report",
    'mode: "\\ud800"\n',
    'notify: {admins: ["a@b.com\u202e"]}\n',
    "mode: &m report\nstale: {platforms: {iOS: *m}}\n",
]

#: YAML that broke the policy loader when these runs found it (TypeError, RecursionError, exponential blow-up).
POLICY_REGRESSIONS = {
    "set_as_key": "? !!set {a: null}\n: 1\n",
    "deep_nesting": "[" * 5000 + "]" * 5000,
    "alias_bomb": alias_bomb(8),
}


@st.composite
def policy_texts(draw: st.DrawFn) -> str:
    """Policy files: mixes of valid and invalid values, random YAML, and known YAML attacks."""
    kind = draw(st.sampled_from(["mix", "mix", "random", "bomb"]))
    if kind == "bomb":
        return draw(st.sampled_from([*YAML_ATTACKS, *POLICY_REGRESSIONS.values()]))
    if kind == "random":
        return draw(st.text(max_size=400))
    import yaml

    keys = draw(st.lists(st.sampled_from(sorted(POLICY_KEYS)), max_size=5, unique=True))
    data = {key: draw(st.sampled_from(POLICY_KEYS[key])) for key in keys}
    return yaml.safe_dump(data, allow_unicode=True)


# --------------------------------------------------------------------------- round two (issue 12): one class per attack

#: The deviceId of the tenant object the diagnosis probe looks at, so crafted output can agree with it.
PROBE_DEVICE_ID = "11111111-2222-3333-4444-555555555555"
PRT_FIELDS = ["Previous Prt Attempt", "Attempt Status", "User Identity", "Credential Type", "Correlation ID", "Endpoint URI",
              "HTTP Method", "HTTP Error", "HTTP status", "Server Error Code", "Server Error Description"]


def worst_prt(blocks: int, width: int, codes: int) -> str:
    """A joined device without a PRT (so the diagnosis lists its PRT attempts) with long attempt fields and many codes."""
    text = (f"| Device State |\n AzureAdJoined : YES\n DomainJoined : NO\n DeviceId : {PROBE_DEVICE_ID}\n"
            f" TenantName : {'T' * width * 4}\n| SSO State |\n AzureAdPrt : NO\n")
    for b in range(blocks):
        text += " AcquirePrtDiagnostics : PRESENT\n" + "".join(
            f" {name} : 0xcaa2{b % 256:02x}{i:02x} {'Z' * width}\n" for i, name in enumerate(PRT_FIELDS)
        )
    return text + " Client ErrorCode : " + " ".join(f"0x80{j:06x}" for j in range(codes)) + "\n"


@st.composite
def code_floods(draw: st.DrawFn) -> str:
    """dsregcmd output naming up to 3,000 distinct error codes (on one line, in as many fields, in PRT blocks) or
    holding very long values: a small ticket that must not become a large diagnosis."""
    base = draw(st.sampled_from(DSREGCMD_FIXTURES)).read_text(encoding="utf-8")
    n = draw(st.integers(0, 3000))
    shape = draw(st.sampled_from(["one_line", "many_fields", "prt_blocks", "long_values", "worst_prt"]))
    if shape == "worst_prt":
        return worst_prt(draw(st.integers(1, 40)), draw(st.integers(100, 2_000)), n)
    if shape == "one_line":
        return base + "\n     Client ErrorCode : " + " ".join(f"0x8{i:07x}" for i in range(1, n + 1)) + "\n"
    if shape == "many_fields":
        return base + "".join(f"\n  Field{i} ErrorCode : 0x801c{i % 65536:04x}" for i in range(n)) + "\n"
    if shape == "prt_blocks":
        block = "\n  AcquirePrtDiagnostics : PRESENT\n  Attempt Status : 0xc000{:04x}\n  Server Error Description : " + "x" * 400
        return base + "".join(block.format(i) for i in range(n // 8)) + "\n"
    long = "A" * draw(st.integers(1_000, 60_000))
    return base + f"\n  TenantName : {long}\n  Error Phase : {long}\n  Client ErrorCode : 0x801c0003\n"


#: GET /api/audit parameters a reviewer (or anyone with the function key) may send.
audit_pages = st.fixed_dictionaries(
    {"limit": st.integers(1, 1000).map(str), "format": st.sampled_from(["json", "csv", "excel"])},
    optional={"kind": st.sampled_from(["decision", "ticket"]), "from": st.sampled_from(["3650d", "2020-01-01"])},
)

#: Time filters, limits and continuation tokens that overflow datetime, SQLite or int() (each was a 500).
OVERFLOW_VALUES = [
    "999999d", "99999999d", "9999-12-31", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01",
    "0001-01-01T00:00:00", "1969-12-31", "\uff11d", "\u00b2d", "\u0663h", "1e9d", "-1d", "9" * 5000, "",
]


def _token(body: Any) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


CONTINUATIONS = [
    _token({"v": 1, "p": "2025-01-01", "s": 10**30}), _token({"v": 1, "p": "2025-01-01", "s": -1}),
    _token({"v": 1, "p": "2025-01-01", "s": 1e300}), _token({"v": 1, "p": "9999-12-31", "s": 9_999_999_999}),
    _token({"v": 1, "p": "0001-01-01", "s": 0}), _token({"v": 1, "p": ["x"], "s": 1}), _token([1, 2]),
    _token({"v": 1, "p": "2025-01-01", "s": "\u00b2"}), "\u00b2", "A" * 5000, "%%%", "eyJ2IjoxfQ",
]  # fmt: skip


@st.composite
def filter_params(draw: st.DrawFn) -> dict[str, str]:
    """Review filters built to overflow: from/to/limit/continuation with extreme or non-ASCII values."""
    values = st.sampled_from(OVERFLOW_VALUES) | st.text(max_size=30)
    params = draw(st.fixed_dictionaries({}, optional={"from": values, "to": values, "limit": values,
                                                      "continuation": st.sampled_from(CONTINUATIONS) | st.text(max_size=40)}))
    return {name: value.replace("\x00", "") for name, value in params.items()}  # a NUL cannot be a CLI argument


@st.composite
def unicode_digit_headers(draw: st.DrawFn, body: bytes) -> str:
    """A genuine MAC presented with a `t` spelt in digits str.isdigit() accepts and int() may not (², ١, ①, １)."""
    digit = st.characters(categories=["Nd", "No"]).filter(lambda c: not ("0" <= c <= "9"))
    spelt = "".join(draw(st.lists(digit | st.sampled_from("0123456789"), min_size=1, max_size=12)))
    if spelt.isascii():
        spelt += draw(digit)
    return f"t={spelt},v1={mac(SECRET, str(NOW), body)}"


@st.composite
def huge_policy_numbers(draw: st.DrawFn) -> str:
    """Policy YAML with an integer (decimal, hex, octal, signed, with underscores) of 40 to 20,000 digits."""
    digits = draw(st.integers(40, 20_000))
    spelling = draw(st.sampled_from(["{}", "-{}", "0x{}", "0o{}", "+{}", "1_{}"])).format("7" * digits)
    key = draw(st.sampled_from(["stale: {disable_after_days: %s}", "limits: {max_destructive_per_run: %s}", "x: %s"]))
    return key % spelling + "\n"


# DNS rebinding and address ranges

#: Ranges a callback may reach only when CALLBACK_ALLOWLIST lists the IP (issue 12 names each).
PRIVATE_RANGES = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "240.0.0.0/4", "127.0.0.0/8", "0.0.0.0/8",
    "198.18.0.0/15", "192.0.2.0/24", "fc00::/7", "fec0::/10", "64:ff9b:1::/48", "2001:db8::/32", "::ffff:10.0.0.0/104",
    "64:ff9b::a00:0/104", "2002:a00::/24",
]  # fmt: skip
#: Never reachable, listed or not.
FORBIDDEN_RANGES = ["169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8", "0.0.0.0/32", "::/128"]
PUBLIC_SAMPLES = ["93.184.216.34", "20.190.151.7", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"]


def _in(networks: list[str]) -> st.SearchStrategy[str]:
    import ipaddress

    return st.sampled_from(networks).flatmap(lambda n: st.ip_addresses(network=ipaddress.ip_network(n))).map(str)


callback_addresses = _in(PRIVATE_RANGES) | _in(FORBIDDEN_RANGES) | st.sampled_from(PUBLIC_SAMPLES) | st.ip_addresses().map(str)
#: (first DNS answer, later DNS answers): public first, then this machine or an internal network.
rebinding_answers = st.tuples(
    st.lists(st.sampled_from(PUBLIC_SAMPLES) | callback_addresses, min_size=1, max_size=3),
    st.lists(st.sampled_from(["127.0.0.1", "::1", "10.0.0.5", "169.254.169.254"]) | callback_addresses, min_size=1, max_size=3),
)


# CSV and terminal output

FORMULA_STARTS = ["=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\t", "\r"]
CSV_SEPARATORS = [",", ";", "\t", "|", "\n", "\r\n", "\r"]
FORMULA_BODIES = ["1+1", "cmd|' /C calc'!A0", 'HYPERLINK("u")', "5", "2e3", "SUM(A1)", "-5", "1]"]


@st.composite
def formula_cells(draw: st.DrawFn) -> str:
    """Cell text that starts a formula at the start or after any separator a spreadsheet may split on."""
    pieces = []
    for _ in range(draw(st.integers(1, 5))):
        pieces.append(draw(st.sampled_from(["", " ", '"', ' "']) | st.just("x")))
        pieces.append(draw(st.sampled_from(FORMULA_STARTS)) + draw(st.sampled_from(FORMULA_BODIES)))
        pieces.append(draw(st.sampled_from(CSV_SEPARATORS)))
    return "".join(pieces) + draw(st.text(max_size=10))


TERMINAL_ATTACKS = [
    "\x1b[2J\x1b[H", "\x1b]0;owned\x07", "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "\x1b[1A\x1b[2K", "\r",
    "\x9b2J", "\x9d0;owned\x9c", "\x08\x08\x08", "\x07", "\u202e", "\u2066", "\u2028", "\x1bc", "\x1b[?1049h", "\x85", "\x7f",
]  # fmt: skip


@st.composite
def terminal_texts(draw: st.DrawFn) -> str:
    """A device name or reason carrying escape sequences that clear, retitle or rewrite a terminal."""
    chunks = draw(st.lists(st.sampled_from(TERMINAL_ATTACKS) | st.text("ABCDE-19 ", max_size=6), min_size=1, max_size=6))
    return "".join(chunks)


# identifiers that look like others

LOOKALIKES = [
    "\u3164", "\u2800", "\u115f", "\u1160", "\uffa0", "\u00a0", "\u2007", "\u202f", "\u3000", "\u1680", "\u2000", "\u200a",
    "\u205f", "\u034f", "\ufe0f", "\U000e0101", "\u17b4", "\u180b",
]  # fmt: skip


@st.composite
def lookalike_ids(draw: st.DrawFn) -> tuple[str, str, str]:
    """(field, value, trick): a ticket_id or requested_by that renders like a plain one."""
    field = draw(st.sampled_from(["ticket_id", "requested_by"]))
    base = "INC-1001" if field == "ticket_id" else "helpdesk@contoso.com"
    trick = draw(st.sampled_from(["lookalike", "zs_space", "combining_run"]))
    if trick == "lookalike":
        insert = draw(st.sampled_from(LOOKALIKES))
    elif trick == "zs_space":
        insert = draw(st.characters(categories=["Zs"]).filter(lambda c: c != " "))
    else:
        insert = "".join(draw(st.lists(st.sampled_from("\u0301\u0300\u0308\u0338\u20dd\u0489"), min_size=4, max_size=40)))
    i = draw(st.integers(1, len(base) - 1))
    return field, base[:i] + insert + base[i:], trick


# values placed in Graph URL paths

PATH_ATTACKS = [
    "..", ".", "../x", "a/b", "%2e%2e", "..%2f", "?a=b", "#x", "a@b.com/../x", "\u2025", "\uff0e\uff0e", "", " ", "..\\",
    "users", "a@b.com?$select=x", "a@b..com", ".a@b.com", "a.@b.com", "a@b", "a@-b.com", "a@b.com.", "x" * 300 + "@b.com",
    "9de5069c-5afe-4c2a-8a33-2f0a7e3d1b11/../x", "9DE5069C-5AFE-4C2A-8A33-2F0A7E3D1B11", "{9de5069c-5afe-4c2a-8a33-2f0a7e3d1b11}",
    "ana@contoso.com", "o'brien#EXT#@contoso.onmicrosoft.com", "a!^~_-.b@x-y.example", "9de5069c-5afe-4c2a-8a33-2f0a7e3d1b11",
]  # fmt: skip
path_values = st.sampled_from(PATH_ATTACKS) | st.text(max_size=40) | st.uuids().map(str) | st.emails()
