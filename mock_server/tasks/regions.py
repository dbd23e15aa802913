"""Regions, their real hostnames and the kf2v model catalogue each one serves.

This is the one place where real names map to the emulator: the DashScope API hostnames select a
region, and the OSS bucket hostnames (``<bucket>.<oss endpoint>``, what links given out through the
intercepting proxy carry) name a bucket of the stand-in's path-style routes.

Sources: ``shared/spec/api-facts.md`` §0 (endpoints), §8 and §9 (OSS hosts), §1 (models, resolutions, defaults), §3 (effect
templates), §4.3 (usage fields), §7 (quotas). Everything uncertain there is marked ASSUMPTION here
and listed in ``docs/assumptions.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

BEIJING = "cn-beijing"
SINGAPORE = "ap-southeast-1"

KF2V_TEMPLATES = ("hanfu-1", "solaron", "magazine", "mech1", "mech2")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    resolutions: tuple[str, ...]
    default_resolution: str
    templates: tuple[str, ...]
    # "SR" (2.2: usage.SR = 480|720|1080) or "ratio" (2.1: usage.video_ratio = "standard").
    usage_style: str
    # ASSUMPTION (api-facts §7): at most this many tasks RUNNING per account, the rest wait PENDING.
    max_running: int = 2
    # api-facts §7: task-submit requests per second per account (issue 5 enforces it).
    submit_rps: int = 2

    def usage(self, resolution: str) -> dict[str, object]:
        if self.usage_style == "SR":
            return {"video_duration": 5, "video_count": 1, "SR": int(resolution.rstrip("P"))}
        return {"video_count": 1, "video_duration": 5, "video_ratio": "standard"}


@dataclass(frozen=True)
class Region:
    name: str
    real_host: str
    models: dict[str, ModelSpec] = field(default_factory=dict)
    default_api_key: str = ""
    # The OSS bucket that result links point at (path-style on the emulator's own listener).
    result_bucket: str = ""
    upload_bucket: str = ""
    # Real hostnames a client may put in ``Host`` to select this region on any listener.
    host_suffixes: tuple[str, ...] = ()
    # The region's OSS endpoint: through the intercepting proxy a bucket is reached virtual-hosted,
    # as ``https://<bucket>.<oss_endpoint>`` (api-facts §8, §9), like the real result and upload hosts.
    oss_endpoint: str = ""

    def matches_host(self, host: str) -> bool:
        host = bare_host(host)
        return host == self.real_host or any(host.endswith(s) for s in self.host_suffixes)

    def bucket_host(self, bucket: str) -> str:
        """The real-looking OSS hostname of one of this region's buckets."""
        return f"{bucket}.{self.oss_endpoint}"

    @property
    def bucket_hosts(self) -> dict[str, str]:
        """``{hostname: bucket}`` for this region's result and upload buckets."""
        return {self.bucket_host(b): b for b in (self.result_bucket, self.upload_bucket)}


_FLASH = ModelSpec("wan2.2-kf2v-flash", ("480P", "720P", "1080P"), "720P", (), "SR")
_PLUS_BJ = ModelSpec("wanx2.1-kf2v-plus", ("720P",), "720P", KF2V_TEMPLATES, "ratio")
# The international name has no "x" (api-facts §1). ASSUMPTION: same templates and limits as in Beijing;
# [QW-KF2V] also lists 480P for it, help.aliyun says 720P only: we follow help.aliyun.
_PLUS_INTL = ModelSpec("wan2.1-kf2v-plus", ("720P",), "720P", KF2V_TEMPLATES, "ratio")

REGIONS: dict[str, Region] = {
    BEIJING: Region(
        name=BEIJING,
        real_host="dashscope.aliyuncs.com",
        models={m.name: m for m in (_FLASH, _PLUS_BJ)},
        default_api_key="sk-kf2v-mock-beijing",
        result_bucket="dashscope-result-bj",
        upload_bucket="dashscope-file-bj",
        host_suffixes=(".cn-beijing.maas.aliyuncs.com",),
        oss_endpoint="oss-cn-beijing.aliyuncs.com",
    ),
    SINGAPORE: Region(
        name=SINGAPORE,
        real_host="dashscope-intl.aliyuncs.com",
        models={m.name: m for m in (_PLUS_INTL,)},
        default_api_key="sk-kf2v-mock-singapore",
        result_bucket="dashscope-result-sg",
        upload_bucket="dashscope-file-sg",
        host_suffixes=(".ap-southeast-1.maas.aliyuncs.com",),
        # ASSUMPTION: Singapore's result and upload bucket hostnames are not in our sources.
        oss_endpoint="oss-ap-southeast-1.aliyuncs.com",
    ),
}


@lru_cache(maxsize=1024)  # asked on every request; bounded, since clients choose the Host header
def region_for_host(host: str | None) -> Region | None:
    """The region a real DashScope hostname (or one of its OSS bucket hostnames) names, or None for
    any other host (e.g. 127.0.0.1)."""
    if not host:
        return None
    for region in REGIONS.values():
        if region.matches_host(host) or bare_host(host) in region.bucket_hosts:
            return region
    return None


def bucket_for_host(host: str | None) -> str | None:
    """The bucket a real-looking OSS hostname names (``dashscope-result-bj.oss-cn-beijing...`` ->
    ``dashscope-result-bj``), or None for any other host."""
    bare = bare_host(host or "")
    for region in REGIONS.values():
        if bare in region.bucket_hosts:
            return region.bucket_hosts[bare]
    return None


def bucket_url(bucket: str) -> str:
    """``https://<bucket host>``: where the real service's links for ``bucket`` would point."""
    for region in REGIONS.values():
        if bucket in (region.result_bucket, region.upload_bucket):
            return f"https://{region.bucket_host(bucket)}"
    raise KeyError(bucket)


def bare_host(host: str) -> str:
    """``Host``-header value -> lower-case name without port or trailing dot."""
    name = host.lower()
    if not name.startswith("["):  # an IPv6 literal keeps its colons (and never names a region)
        name = name.split(":", 1)[0]
    return name.rstrip(".")
