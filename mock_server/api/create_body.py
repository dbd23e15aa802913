"""Create-task body validation: the documented rules and defaults per model, in the order the
real service most plausibly checks them. Returns a ``TaskSpec`` or raises ``DashScopeError``.

Accepted and ignored, because the official SDKs send them (sdk-wire-contract §0, java-sdk-wire):
``input.function``, ``input.extend_prompt``, ``parameters.with_audio``, ``parameters: {}``, and any
unknown key. A field sent as JSON ``null`` is the same as one left out, everywhere (the Python SDK
sends ``input.prompt: null``, the Java SDK drops nulls; docs/assumptions.md "JSON null").
"""

from __future__ import annotations

from typing import Any

from ..tasks.errors import DashScopeError
from ..tasks.models import SEED_MAX, TaskSpec
from ..tasks.regions import Region

PROMPT_MAX = 800  # characters; longer prompts are cut, not refused (api-facts §1)
NEGATIVE_PROMPT_MAX = 500
DURATION = 5  # fixed ("当前参数值固定为5，且不支持修改")
IMAGE_URL_SCHEMES = ("http://", "https://", "oss://", "data:")


def parse_create_body(body: Any, region: Region) -> TaskSpec:
    if not isinstance(body, dict):
        raise DashScopeError.of("invalid_body")

    model = body.get("model")
    if model is None or model == "":
        raise DashScopeError.of("empty_model")
    if not isinstance(model, str):
        raise DashScopeError.of("out_of_definition", parameter="model")
    spec = region.models.get(model)
    if spec is None:
        raise DashScopeError.of("model_not_exist")

    inputs = body.get("input")
    if inputs is None or inputs == {}:
        raise DashScopeError.of("empty_input")
    if not isinstance(inputs, dict):
        raise DashScopeError.of("illegal_input")

    params = body.get("parameters")
    if params is None:
        params = {}  # optional in the API reference (api-facts §1)
    if not isinstance(params, dict):
        raise DashScopeError.of("out_of_definition", parameter="parameters")

    prompt = _optional_str(inputs, "prompt", "input.prompt")
    negative = _optional_str(inputs, "negative_prompt", "input.negative_prompt")
    template = _optional_str(inputs, "template", "input.template") or None
    first = _optional_str(inputs, "first_frame_url", "input.first_frame_url") or None
    last = _optional_str(inputs, "last_frame_url", "input.last_frame_url") or None
    _optional_bool(inputs, "extend_prompt", True)  # deprecated and ignored, but typed like the rest

    if not first:
        # Also the documented failure for "only last_frame_url and template" ([FX]).
        raise DashScopeError.of("field_required", field="input.first_frame_url")
    if template is not None:
        if template not in spec.templates:
            raise DashScopeError.of("out_of_definition", parameter="input.template")
        last = None  # "若同时提供first_frame_url、last_frame_url、template，将忽略last_frame_url"
        prompt = None  # the prompt is ignored with a template
    elif not last:
        # ASSUMPTION: required without a template ([GUIDE] 必填, [QW-KF2V] required).
        raise DashScopeError.of("field_required", field="input.last_frame_url")
    for name, url in (("input.first_frame_url", first), ("input.last_frame_url", last)):
        if url is not None and not url.startswith(IMAGE_URL_SCHEMES):
            raise DashScopeError.of("invalid_url")

    resolution = _given(params, "resolution", spec.default_resolution)
    if not isinstance(resolution, str) or resolution not in spec.resolutions:
        raise DashScopeError.of("out_of_definition", parameter="resolution")
    duration = _given(params, "duration", DURATION)
    if not _is_int(duration) or duration != DURATION:
        raise DashScopeError.of("out_of_definition", parameter="duration")
    seed = params.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed <= SEED_MAX):
        raise DashScopeError.of("out_of_definition", parameter="seed")
    prompt_extend = _optional_bool(params, "prompt_extend", True)
    watermark = _optional_bool(params, "watermark", False)

    return TaskSpec(
        model=model,
        first_frame_url=first,
        last_frame_url=last,
        prompt=prompt[:PROMPT_MAX] if prompt else None,
        negative_prompt=negative[:NEGATIVE_PROMPT_MAX] if negative else None,
        template=template,
        resolution=resolution,
        duration=DURATION,
        prompt_extend=prompt_extend,
        watermark=watermark,
        seed=seed,
    )


def _given(container: dict, key: str, default: Any) -> Any:
    """The value sent for ``key``; ``default`` when it is left out or null."""
    value = container.get(key)
    return default if value is None else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_str(container: dict, key: str, label: str) -> str | None:
    value = container.get(key)
    if value is None or isinstance(value, str):
        return value
    raise DashScopeError.of("out_of_definition", parameter=label)


def _optional_bool(container: dict, key: str, default: bool) -> bool:
    value = container.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise DashScopeError.of("out_of_definition", parameter=key)
    return value
