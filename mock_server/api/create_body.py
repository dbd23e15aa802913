"""Create-task body validation: the documented rules and defaults per model, in the order the
real service most plausibly checks them. Returns a ``TaskSpec`` or raises ``DashScopeError``.

Accepted and ignored, because the official SDKs send them (sdk-wire-contract §0, java-sdk-wire):
``input.function``, ``input.extend_prompt``, ``parameters.with_audio``, ``parameters: {}``, and any
unknown key. A field sent as JSON ``null`` is the same as one left out, everywhere (the Python SDK
sends ``input.prompt: null``, the Java SDK drops nulls; docs/assumptions.md "JSON null").
"""

from __future__ import annotations

from typing import Any

from ..tasks.errors import DashScopeError, quoted
from ..tasks.models import SEED_MAX, TaskSpec
from ..tasks.regions import Region

PROMPT_MAX = 800  # characters; longer prompts are cut, not refused (api-facts §1)
NEGATIVE_PROMPT_MAX = 500
DURATION = 5  # fixed ("当前参数值固定为5，且不支持修改")
IMAGE_URL_SCHEMES = ("http://", "https://", "oss://", "data:")


def parse_create_body(body: Any, region: Region) -> TaskSpec:
    if not isinstance(body, dict):
        raise DashScopeError.of("invalid_body", reason=(
            f"the body is JSON but a {type(body).__name__}, not an object"))

    model = body.get("model")
    if model is None or model == "":
        raise DashScopeError.of("empty_model", reason="model is missing or empty")
    if not isinstance(model, str):
        raise DashScopeError.of("out_of_definition", parameter="model",
                                reason=f"model is {quoted(model)}, not a string")
    spec = region.models.get(model)
    if spec is None:
        raise DashScopeError.of("model_not_exist", reason=(
            f"model {quoted(model)} is not served in {region.name} "
            f"(models: {', '.join(region.models)})"))

    inputs = body.get("input")
    if inputs is None or inputs == {}:
        raise DashScopeError.of("empty_input", reason="input is missing or empty")
    if not isinstance(inputs, dict):
        raise DashScopeError.of("illegal_input",
                                reason=f"input is a {type(inputs).__name__}, not an object")

    params = body.get("parameters")
    if params is None:
        params = {}  # optional in the API reference (api-facts §1)
    if not isinstance(params, dict):
        raise DashScopeError.of("out_of_definition", parameter="parameters",
                                reason=f"parameters is a {type(params).__name__}, not an object")

    prompt = _text(inputs, "prompt", "input.prompt")
    negative = _text(inputs, "negative_prompt", "input.negative_prompt")
    template = _optional_str(inputs, "template", "input.template") or None
    first = _optional_str(inputs, "first_frame_url", "input.first_frame_url") or None
    last = _optional_str(inputs, "last_frame_url", "input.last_frame_url") or None
    _optional_bool(inputs, "extend_prompt", True, "input.")  # deprecated, ignored, but typed

    if not first:
        # Also the documented failure for "only last_frame_url and template" ([FX]).
        raise DashScopeError.of("field_required", field="input.first_frame_url",
                                reason="input.first_frame_url is missing or empty")
    if template is not None:
        if template not in spec.templates:
            raise DashScopeError.of("out_of_definition", parameter="input.template", reason=(
                f"input.template {quoted(template)} is not one of {model}'s templates"
                + (f" ({', '.join(spec.templates)})" if spec.templates else " (it has none)")))
        last = None  # "若同时提供first_frame_url、last_frame_url、template，将忽略last_frame_url"
        prompt = None  # the prompt is ignored with a template
    elif not last:
        # ASSUMPTION: required without a template ([GUIDE] 必填, [QW-KF2V] required).
        raise DashScopeError.of("field_required", field="input.last_frame_url", reason=(
            "input.last_frame_url is missing or empty (it is required without a template)"))
    for name, url in (("input.first_frame_url", first), ("input.last_frame_url", last)):
        if url is not None and not url.startswith(IMAGE_URL_SCHEMES):
            raise DashScopeError.of("invalid_url", reason=(
                f"{name} {quoted(url)} is not an http, https, oss or data URL"))

    resolution = _given(params, "resolution", spec.default_resolution)
    if not isinstance(resolution, str) or resolution not in spec.resolutions:
        raise DashScopeError.of("out_of_definition", parameter="resolution", reason=(
            f"parameters.resolution {quoted(resolution)} is not one of {model}'s "
            f"{', '.join(spec.resolutions)}"))
    duration = _given(params, "duration", DURATION)
    if not _is_int(duration) or duration != DURATION:
        raise DashScopeError.of("out_of_definition", parameter="duration", reason=(
            f"parameters.duration is {quoted(duration)}; it is fixed at {DURATION}"))
    seed = params.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed <= SEED_MAX):
        raise DashScopeError.of("out_of_definition", parameter="seed", reason=(
            f"parameters.seed is {quoted(seed)}, not a whole number in [0, {SEED_MAX}]"))
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
    raise DashScopeError.of("out_of_definition", parameter=label,
                            reason=f"{label} is {quoted(value)}, not a string")


def _text(container: dict, key: str, label: str) -> str | None:
    """A prompt: a string that is text. A lone UTF-16 surrogate (``"\\ud800"``, valid JSON) is no
    character at all: it cannot be extended, stored or echoed, so it is refused like a bad value."""
    value = _optional_str(container, key, label)
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            lone = f"\\u{ord(value[exc.start]):04x}"
            raise DashScopeError.of("out_of_definition", parameter=label, reason=(
                f"{label} holds a lone UTF-16 surrogate ({lone} at character {exc.start}), "
                "which is no character: it cannot be stored or sent back")) from None
    return value


def _optional_bool(container: dict, key: str, default: bool, where: str = "parameters.") -> bool:
    value = container.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise DashScopeError.of("out_of_definition", parameter=key,
                                reason=f"{where}{key} is {quoted(value)}, not true or false")
    return value
