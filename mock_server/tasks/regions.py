"""Regions, their real hostnames and the kf2v model catalogue each one serves.

Sources: ``shared/spec/api-facts.md`` §0 (endpoints), §1 (models, resolutions, defaults), §3 (effect
templates), §4.3 (usage fields), §7 (quotas). Everything uncertain there is marked ASSUMPTION here
and listed in ``docs/assumptions.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def matches_host(self, host: str) -> bool:
        host = host.split(":", 1)[0].lower()
        return host == self.real_host or any(host.endswith(s) for s in self.host_suffixes)


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
    ),
    SINGAPORE: Region(
        name=SINGAPORE,
        real_host="dashscope-intl.aliyuncs.com",
        models={m.name: m for m in (_PLUS_INTL,)},
        default_api_key="sk-kf2v-mock-singapore",
        result_bucket="dashscope-result-sg",
        upload_bucket="dashscope-file-sg",
        host_suffixes=(".ap-southeast-1.maas.aliyuncs.com",),
    ),
}


def region_for_host(host: str | None) -> Region | None:
    """The region a real DashScope hostname names, or None for any other host (e.g. 127.0.0.1)."""
    if not host:
        return None
    for region in REGIONS.values():
        if region.matches_host(host):
            return region
    return None
