"""Which hostnames the proxy intercepts: the real DashScope API hosts of the emulated regions
(``dashscope.aliyuncs.com``, ``dashscope-intl.aliyuncs.com``, the workspace hosts
``*.cn-beijing.maas.aliyuncs.com`` / ``*.ap-southeast-1.maas.aliyuncs.com``) and the OSS bucket
hosts the emulator's answers name. The names come from ``tasks.regions``; nothing else is served,
and nothing is ever forwarded anywhere."""

from __future__ import annotations

import re

from ..tasks.regions import REGIONS, region_for_host

# A DNS name of letters, digits, hyphens and underscores (the SDK allows "_" in workspace ids, the
# first label of a workspace host); anything else (an IP literal, a space) is not one of ours.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(r"(?=.{1,253}$)" + _LABEL + r"(?:\." + _LABEL + r")*")
HTTPS_PORT = 443


def intercepted(host: str | None) -> bool:
    """True for a hostname (lower-case, no port) that the emulator answers."""
    return bool(host) and _HOSTNAME.fullmatch(host) is not None and region_for_host(host) is not None


def served_names() -> list[str]:
    names: list[str] = []
    for region in REGIONS.values():
        names.append(region.real_host)
        names += [f"*{suffix}" for suffix in region.host_suffixes]
        names += list(region.bucket_hosts)
    return names


def refusal(target: str) -> str:
    """The body of the 403 for any other host."""
    return (f"kf2v-mock proxy: {target} is not intercepted, and nothing was sent to it. This "
            "proxy answers only the DashScope and OSS hostnames the emulator serves ("
            + ", ".join(served_names()) + ").\n")
