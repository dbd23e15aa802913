"""Network helpers for the isolation tests (no traffic ever leaves the machine)."""

from __future__ import annotations

import ipaddress
import socket


def local_non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, or None when it has none. A UDP
    ``connect`` only asks the routing table: no packet is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any routable-looking address will do
        except OSError:
            return None
        address = probe.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback or address == "0.0.0.0":
        return None
    try:  # it must really be ours: bindable
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))
    except OSError:
        return None
    return address


class FakeDns:
    """Replaces ``socket.getaddrinfo`` for made-up names (everything else resolves as usual).
    ``answers[name]`` is a list of addresses, or a list of such lists: one per lookup, the last
    one repeating."""

    def __init__(self, monkeypatch, answers: dict[str, list]):
        self.answers = answers
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self._real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        answer = self.answers[name]
        if answer and isinstance(answer[0], list):
            answer = answer[min(self.lookups.count(name), len(answer)) - 1]
        port = int(port or 0)
        infos = []
        for address in answer:
            if ":" in address:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos
