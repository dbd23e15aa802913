"""Fetching image URLs without becoming a way into the machine the emulator runs on.

Rules (README "Isolation and safety"): only ``http``/``https``; never link-local, cloud metadata,
unspecified, multicast or reserved addresses; private ranges only with ``allow_private``; loopback
allowed by default (fixtures are usually served on the same machine) unless ``allow_loopback`` is
off. Every address a host name resolves to is checked, and the connection goes to exactly the
checked addresses (``GuardedResolver`` is the connector's only resolver, so no second lookup can
rebind the name). Redirects are followed by hand, each hop checked again, at most ``MAX_REDIRECTS``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
# ASSUMPTION: the real service's redirect limit is not documented; 5 covers CDN hops.
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)

# Cloud instance-metadata endpoints: refused whatever the settings (most sit in ranges that are
# refused anyway; Alibaba Cloud's is in 100.64/10, which --allow-private-image-urls would open).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",   # AWS, GCP, Azure, OpenStack, ...
    "169.254.170.2",     # AWS ECS task metadata
    "100.100.100.200",   # Alibaba Cloud ECS
    "fd00:ec2::254",     # AWS IPv6 IMDS
))
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata",
                            "metadata.azure.internal", "instance-data", "instance-data.ec2.internal"})
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))


class UrlRefused(Exception):
    """The URL, or an address its host resolves to, is not allowed by the rules."""


@dataclass(frozen=True)
class UrlRules:
    allow_private: bool = False
    allow_loopback: bool = True

    def refusal(self, address: IpAddress) -> str | None:
        """Why ``address`` may not be connected to, or None when it may."""
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                # ::ffff:a.b.c.d on a dual-stack socket IS that IPv4 address: judged as it.
                return self.refusal(address.ipv4_mapped)
            for kind, carried in embedded_ipv4(address):
                # A tunnel or translator would carry the connection off this machine to the
                # address inside: refused when that address is, and when it is loopback (which
                # such a spelling never reaches on this machine).
                reason = self.refusal(carried)
                if reason is not None or carried.is_loopback:
                    return f"{reason or 'a loopback address'} inside a {kind} address ({carried})"
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if address.is_unspecified or address.is_multicast or address.is_reserved:
            return "not a unicast address"
        if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
                "255.255.255.255"):
            return "not a unicast address"
        if any(address in network for network in PRIVATE_NETWORKS) or not address.is_global:
            # Private ranges, and the other special-purpose ones (documentation, benchmarking...).
            return None if self.allow_private else "a private address"
        return None

    def hint(self, reason: str) -> str:
        """The flag that would allow what ``refusal`` refused, for the reason a client sees."""
        if reason.startswith("a private address"):  # also one inside a 6to4, Teredo... address
            return " (use --allow-private-image-urls)"
        if reason == "a loopback address":
            return " (refused because of --deny-loopback-image-urls)"
        return " (always refused)"

    def check_address(self, host: str, address: str) -> None:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise UrlRefused(f"{host}: {address!r} is not an IP address") from None
        reason = self.refusal(parsed)
        if reason is not None:
            where = (f"{parsed} is" if host.strip("[]") == str(parsed) or host == address
                     else f"{host} resolves to {parsed},")
            raise UrlRefused(f"{where} {reason}{self.hint(reason)}")

    def check_url(self, url: URL) -> None:
        """Scheme and host checks that need no lookup; an IP literal host is judged here, because
        aiohttp connects to literals without asking the resolver."""
        if url.scheme not in ALLOWED_SCHEMES:
            raise UrlRefused(f"scheme {url.scheme!r} is not allowed (http and https only)")
        host = url.raw_host
        if not host:
            raise UrlRefused("the URL has no host")
        name = host.rstrip(".").lower()
        if name in METADATA_HOSTS:
            raise UrlRefused(f"{host} is a cloud metadata host (always refused)")
        # aiohttp's own test for "this is an IP address, do not resolve it" (helpers.is_ip_address).
        if ":" in host or host.replace(".", "").isdigit():
            self.check_address(host, host)


_LOW_32 = 0xFFFFFFFF
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")  # IPv4-compatible (RFC 4291, deprecated)
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # IPv4-translated (SIIT, RFC 2765)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """Every IPv4 address an IPv6 spelling carries, with the form's name: 6to4 (2002::/16), Teredo
    (2001::/32, its server and its client), NAT64 (64:ff9b::/96, 64:ff9b:1::/48), IPv4-compatible,
    IPv4-translated and an ISATAP interface id (``...:0:5efe:a.b.c.d``)."""
    found = []
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        found += [("Teredo", carried) for carried in address.teredo]
    low = ipaddress.IPv4Address(int(address) & _LOW_32)
    if any(address in network for network in _NAT64):
        found.append(("NAT64", low))
    if (address in _COMPATIBLE or address in _TRANSLATED) and int(low) > 1:  # not :: or ::1
        found.append(("IPv4-compatible", low))
    if (int(address) >> 32) & _LOW_32 in (0x00005EFE, 0x02005EFE):
        found.append(("ISATAP", low))
    return found


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses the host if ANY of its addresses is
    not allowed. What it returns is what the connector connects to: the check is the pin."""

    def __init__(self, rules: UrlRules, inner: AbstractResolver | None = None):
        self.rules = rules
        self._inner = inner

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        infos = await self._inner.resolve(host, port, family)
        if host.rstrip(".").lower() in METADATA_HOSTS:
            raise UrlRefused(f"{host} is a cloud metadata host (always refused)")
        for info in infos:
            self.rules.check_address(host, info["host"])
        return infos

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def guarded_session(rules: UrlRules) -> aiohttp.ClientSession:
    """The session image downloads go through. trust_env=False: never through a proxy (a proxy
    would connect to whatever the name resolves to on its side)."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(rules), use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


@dataclass
class FetchResult:
    status: int
    body: bytes | None  # None unless status is 200
    url: str = ""  # the last hop's URL (after redirects)


class TooLarge(Exception):
    """The answer is over the size cap (the message says how it showed)."""


async def fetch(url: str, session: aiohttp.ClientSession, rules: UrlRules, *, max_bytes: int,
                timeout: float) -> FetchResult:
    """GET ``url`` under ``rules``, following up to ``MAX_REDIRECTS`` redirects, each re-checked.
    Raises ``UrlRefused``, ``TooLarge``, ``asyncio.TimeoutError`` or aiohttp/OS errors."""
    async with asyncio.timeout(timeout):  # one deadline for all hops together
        current = URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            rules.check_url(current)
            async with session.get(current, allow_redirects=False) as response:
                if response.status in _REDIRECTS and "Location" in response.headers:
                    current = current.join(URL(response.headers["Location"]))
                    continue
                if response.status != 200:
                    return FetchResult(response.status, None, str(current))
                if (response.content_length or 0) > max_bytes:
                    raise TooLarge(f"its Content-Length is {response.content_length} bytes, "
                                   f"over the {max_bytes}-byte cap")
                buffer = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    buffer += chunk
                    if len(buffer) > max_bytes:
                        raise TooLarge(f"the download went over the {max_bytes}-byte cap")
                return FetchResult(200, bytes(buffer), str(current))
        raise UrlRefused(f"more than {MAX_REDIRECTS} redirects")
