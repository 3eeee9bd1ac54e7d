"""Fuzzing callback URLs: nothing but an allowlisted host is ever called back, whatever the URL's tricks
(loopback, metadata, link-local, IPv6 forms, decimal/octal/hex IPs, userinfo, backslashes, fullwidth dots),
and a listed name whose DNS answer points at this machine or a metadata service is refused at delivery.
"""

from __future__ import annotations

import asyncio

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.probes import probe_address, probe_callback_url, probe_resolution
from tests.fuzz.strategies import callback_urls, ip_addresses

CI = settings(max_examples=400, deadline=None)


@CI
@given(url=callback_urls())
@example(url="https://hooks.example.com\uff0eevil.net/")
@example(url="https://evil.net\\@hooks.example.com/")
@example(url="https://2130706433/")
@example(url="https://[::ffff:169.254.169.254]/")
@example(url="https://\u3002.contoso.com/cb")  # accepted, then uncallable (IDNA empty label): found by this test
@example(url="https://b\u00fccher.contoso.com/cb")  # IDN: the client reads xn--bcher-kva.contoso.com
@example(url="h\tttps://hooks.example.com/cb")  # urlsplit drops the tab, the client refuses it: found by this test
@example(url="http://127.0.0.1:8443/cb")
@example(url="https://hooks.example.com/cb")
@example(url="https://xn--%00hooks-9ya.com/cb")  # the idna codec's ValueError escaped: a 500 at intake (issue 12 runs)
def test_only_allowlisted_hosts_are_accepted(url: str) -> None:
    probe_callback_url(url)


@settings(max_examples=300, deadline=None)
@given(host=st.sampled_from(["hooks.example.com", "a.contoso.com", "localhost"]), resolved=st.lists(ip_addresses, min_size=1,
                                                                                                      max_size=3))
@example(host="hooks.example.com", resolved=["::ffff:169.254.169.254"])  # IPv4-mapped metadata: used to pass
@example(host="hooks.example.com", resolved=["127.0.0.1"])  # loopback behind a public name: used to pass
@example(host="hooks.example.com", resolved=["0.0.0.0"])
@example(host="hooks.example.com", resolved=["64:ff9b::a9fe:a9fe"])
def test_dns_answers_reaching_this_machine_or_metadata_are_refused(host: str, resolved: list[str]) -> None:
    asyncio.run(probe_resolution(host, resolved))


def test_public_addresses_deliver_and_private_ones_only_when_listed() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert asyncio.run(probe_resolution("hooks.example.com", [address])) == "allowed"
    assert asyncio.run(probe_resolution("localhost", ["127.0.0.1"])) == "allowed"  # named localhost on purpose
    assert asyncio.run(probe_resolution("hooks.example.com", ["10.0.0.5"])) == "refused"  # delivered to before issue 12
    assert asyncio.run(probe_address("10.0.0.5", listed=True)) == "allowed_listed"
