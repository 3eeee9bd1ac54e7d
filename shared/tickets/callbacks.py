"""Result callbacks: only to allowlisted hosts, signed like incoming webhooks, never following redirects.

A callback URL is checked at intake (a ticket naming any other host is refused with 400, so the service
can never be made to call an internal address) and again at delivery, where the host is resolved once and
every address checked: link-local, cloud metadata, unspecified and multicast addresses are refused; so are
loopback (but for `localhost`) and private, shared, reserved and translation ranges unless CALLBACK_ALLOWLIST
lists that IP (IPv4 addresses wrapped in IPv6 forms included). The connection then goes to the checked
address itself, with the name kept for the Host header, SNI and the certificate check: no second lookup.

CALLBACK_ALLOWLIST: comma-separated `host`, `host:port` or `*.domain` (subdomains only). IP literals match
only when listed exactly; plain http is accepted only for loopback hosts listed explicitly (local tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared import settings
from shared.errors import ConfigError, JanitorError
from shared.tickets.signature import HEADER, sign

MAX_URL_CHARS = 2048
DELIVERY_TIMEOUT_SECONDS = 10.0
#: Unicode categories never accepted in a callback URL: controls, format characters, separators, surrogates.
_NOT_IN_URLS = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})
#: Addresses a callback must never reach through DNS, whatever the allowlist says about names.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "168.63.129.16", "100.100.100.200", "fd00:ec2::254")
)


class CallbackRefused(JanitorError):
    """The callback URL may not be used; the message says why (it is safe to show the caller)."""


@dataclass(frozen=True, slots=True)
class AllowEntry:
    host: str  # lowercase; for wildcards the suffix without "*." (matches subdomains only)
    port: int | None
    wildcard: bool

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host) and _ip(host) is None
        return host == self.host


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def parse_allowlist(text: str | None) -> tuple[AllowEntry, ...]:
    """Entries of CALLBACK_ALLOWLIST; ConfigError naming the bad entry."""
    entries: list[AllowEntry] = []
    for raw in (text or "").split(","):
        item = raw.strip().lower().rstrip(".")
        if not item:
            continue
        if (
            "/" in item
            or "@" in item
            or item in ("*", "*.")
            or item.count("*") > 1
            or ("*" in item and not item.startswith("*."))
        ):
            raise ConfigError(
                "CALLBACK_ALLOWLIST", f"{raw.strip()!r} is not a host; list hosts like hooks.example.com or *.example.com"
            )
        port: int | None = None
        host = item
        if item.startswith("["):  # [v6]:port
            close = item.find("]")
            host, rest = item[: close + 1], item[close + 1 :]
            if rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit():
                port = int(rest[1:])
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            if not (port_text.isascii() and port_text.isdigit()):
                raise ConfigError("CALLBACK_ALLOWLIST", f"{raw.strip()!r}: the port must be a number")
            port = int(port_text)
        wildcard = host.startswith("*.")
        entries.append(AllowEntry(host[2:] if wildcard else host.strip("[]"), port, wildcard))
    return tuple(entries)


def allowlist_from_settings(env: Mapping[str, str] | None = None) -> tuple[AllowEntry, ...]:
    return parse_allowlist(settings.get("CALLBACK_ALLOWLIST", env))


def check_callback_url(url: str, allowlist: tuple[AllowEntry, ...]) -> str:
    """The URL when it may be called back; CallbackRefused saying why otherwise."""
    if len(url) > MAX_URL_CHARS:
        raise CallbackRefused(f"callback_url: longer than {MAX_URL_CHARS} characters")
    url = url.strip()
    if any(unicodedata.category(char) in _NOT_IN_URLS for char in url):
        # urlsplit silently drops tabs and line breaks that the HTTP client refuses: parse what will be called
        raise CallbackRefused("callback_url: must not contain spaces, control or invisible characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackRefused("callback_url: not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise CallbackRefused("callback_url: must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url: must not carry a user name or password")
    host = parts.hostname.lower().rstrip(".")
    _same_host_for_the_client(url, host)
    port = port or (443 if parts.scheme == "https" else 80)
    if not allowlist:
        raise CallbackRefused("callback_url: callbacks are turned off (CALLBACK_ALLOWLIST is empty); omit callback_url")
    if not any(entry.matches(host, port) for entry in allowlist):
        if _ip(host) is not None or host.replace(".", "").isdigit() or host.startswith("0x"):
            raise CallbackRefused(f"callback_url: IP address {host} is not in CALLBACK_ALLOWLIST; use an allowlisted host name")
        raise CallbackRefused(f"callback_url: host {host} is not in CALLBACK_ALLOWLIST")
    address = _ip(host)
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if parts.scheme == "http" and not loopback:
        raise CallbackRefused("callback_url: must use https:// (plain http is accepted only for an allowlisted loopback host)")
    return url


def _same_host_for_the_client(url: str, host: str) -> None:
    """The HTTP client that will call the URL must read the same host the checks read (no parser differential:
    fullwidth dots, empty labels, IDN forms): otherwise the URL is refused at intake."""
    import httpx

    try:
        seen = httpx.URL(url).host.lower().rstrip(".")
    except (httpx.InvalidURL, ValueError):  # ValueError: the idna codec refusing a label such as "xn--%00..."
        raise CallbackRefused("callback_url: the HTTP client cannot call this URL") from None
    if seen != host:
        raise CallbackRefused(f"callback_url: host {host!r} is read as {seen!r} by the HTTP client; give the host in ASCII")


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


async def _resolved_addresses(host: str, port: int) -> list[Address]:
    """The host's addresses, in the resolver's order (the one lookup a delivery makes)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (IPv4-compatible, NAT64), and the two IPv6
#: addresses of the first that are not IPv4 ones (the unspecified address and loopback).
_IPV4_IN_LAST_32 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))
_NOT_WRAPPING = frozenset({ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")})
#: Not public, on top of what `is_global` says (named here so no Python version can let them through):
#: private, shared (CGNAT), reserved and local translation ranges, site-local and unique-local IPv6,
#: the deprecated 6to4 relay anycast, the documentation and SRv6 prefixes Python 3.13.0 calls global.
NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.0.0.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "240.0.0.0/4", "fc00::/7", "fec0::/10", "64:ff9b:1::/48", "3fff::/20", "5f00::/16",
    )
)  # fmt: skip


def _addresses_behind(address: Address) -> list[Address]:
    """The address and the IPv4 address an IPv6 form wraps (mapped, compatible, NAT64, 6to4, Teredo), if any."""
    found: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if any(address in net for net in _IPV4_IN_LAST_32) and address not in _NOT_WRAPPING:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: Address) -> bool:
    """Reachable on the internet: `is_global` and in none of NOT_PUBLIC."""
    return address.is_global and not any(address in net for net in NOT_PUBLIC if net.version == address.version)


def listed_addresses(allowlist: tuple[AllowEntry, ...], port: int) -> frozenset[Address]:
    """IP literals the allowlist names for `port`: the only private or loopback addresses a callback may reach."""
    entries = (e for e in allowlist if not e.wildcard and e.port in (None, port))
    return frozenset(a for a in (_ip(e.host) for e in entries) if a is not None)


def refused_address(address: Address, host: str, listed: frozenset[Address] = frozenset()) -> str | None:
    """Why a callback to `host` may not connect to `address`, or None when it may. Link-local, metadata,
    unspecified and multicast addresses never; loopback for `localhost`; any other address that is not
    public only when `listed` (CALLBACK_ALLOWLIST names that IP). IPv4 wrapped in IPv6 is checked too."""
    for candidate in _addresses_behind(address):
        if candidate.is_link_local or candidate in METADATA_ADDRESSES:
            return "a link-local/metadata address"
        if candidate.is_unspecified or candidate.is_multicast:
            return "an unspecified or multicast address"
        if is_public(candidate) or address in listed or candidate in listed:
            continue
        if candidate.is_loopback:
            if host != "localhost":
                return "a loopback address (only localhost, or an IP listed in CALLBACK_ALLOWLIST)"
        else:
            return "a private, shared, reserved or translation address (list the IP in CALLBACK_ALLOWLIST to allow it)"
    return None


async def resolve_callback(url: str, allowlist: tuple[AllowEntry, ...]) -> Address:
    """At delivery: the one address the callback connects to, checked (see `refused_address`). The host is
    resolved once and every answer must pass, so a name that answers a public address first and an
    internal one next (DNS rebinding) has nothing left to rebind: the connection goes to this address."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _ip(host)
    if literal is not None:
        addresses: list[Address] = [literal]
    else:
        try:
            addresses = list(await _resolved_addresses(host, port))
        except OSError as exc:
            raise CallbackRefused(f"callback host {host} does not resolve: {exc}") from None
    if not addresses:
        raise CallbackRefused(f"callback host {host} does not resolve")
    listed = listed_addresses(allowlist, port)
    for address in addresses:
        why = refused_address(address, host, listed)
        if why is not None:
            raise CallbackRefused(f"callback host {host} resolves to {address}, {why}")
    return addresses[0]


def pinned_request(url: str, address: Address) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL naming `address`, Host header, request extensions): the connection goes to the checked address while
    the Host header and TLS (SNI and the certificate's name) still use the name."""
    import httpx

    parsed = httpx.URL(url)
    pinned = parsed.copy_with(host=str(address))
    host_header = parsed.netloc.decode("ascii")
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return str(pinned), {"Host": host_header}, extensions


@dataclass(frozen=True, slots=True)
class Delivery:
    """One callback attempt: HTTP status (0 when nothing was sent) and the error, if any."""

    url: str
    status: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def deliver(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: bytes,
    allowlist: tuple[AllowEntry, ...],
    now: float,
    client: Any = None,
) -> Delivery:
    """POST the signed JSON payload to `url` (allowlist re-checked, connected to the checked address, no redirects).
    Never raises for the network."""
    import httpx

    try:
        check_callback_url(url, allowlist)
        address = await resolve_callback(url, allowlist)
    except CallbackRefused as exc:
        return Delivery(url, 0, str(exc))
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    target, host, extensions = pinned_request(url, address)
    headers = {"Content-Type": "application/json", HEADER: sign(secret, body, int(now)), "User-Agent": "entra-janitor", **host}
    owned = client is None
    http = client or httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
    try:
        response = await http.post(target, content=body, headers=headers, extensions=extensions, follow_redirects=False)
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return Delivery(url, response.status_code, error)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is not an HTTPError
        return Delivery(url, 0, f"{type(exc).__name__}: {exc}")
    finally:
        if owned:
            await http.aclose()
