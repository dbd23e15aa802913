"""Create-body rules: documented defaults, and a DashScope error for every bad input."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.api.create_body import parse_create_body
from mock_server.tasks.errors import DashScopeError
from mock_server.tasks.regions import BEIJING, REGIONS, SINGAPORE

BJ = REGIONS[BEIJING]
SG = REGIONS[SINGAPORE]
URL = "https://example.invalid/a.png"


def body(model="wan2.2-kf2v-flash", params=None, **inputs):
    base = {"first_frame_url": URL, "last_frame_url": URL}
    base.update(inputs)
    out = {"model": model, "input": base}
    if params is not None:
        out["parameters"] = params
    return out


def refused(raw, region=BJ):
    with pytest.raises(DashScopeError) as info:
        parse_create_body(raw, region)
    return info.value.status, info.value.code, info.value.message


def test_defaults_per_model():
    spec = parse_create_body(body(), BJ)
    assert (spec.resolution, spec.duration, spec.prompt_extend, spec.watermark, spec.seed) == (
        "720P", 5, True, False, None)
    assert parse_create_body(body("wanx2.1-kf2v-plus"), BJ).resolution == "720P"
    assert parse_create_body(body("wan2.1-kf2v-plus"), SG).resolution == "720P"


def test_accepts_everything_the_sdk_sends():
    raw = body(params={}, prompt=None, function="video-synthesis", extend_prompt=True,
               custom_in=1)
    raw["parameters"] = {"some_param": "passthrough", "size": "1280*720", "ratio": "16:9"}
    spec = parse_create_body(raw, BJ)
    assert spec.prompt is None


def test_prompts_are_truncated_not_refused():
    spec = parse_create_body(body(prompt="字" * 900, negative_prompt="n" * 600), BJ)
    assert len(spec.prompt) == 800 and len(spec.negative_prompt) == 500


@pytest.mark.parametrize("raw, expected", [
    ([], (400, "InvalidParameter", "Required body invalid, check the request body format.")),
    ({"input": {"first_frame_url": URL}},
     (400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.')),
    ({"model": "wan2.2-kf2v-flash"},
     (400, "BadRequest.EmptyInput", "Required input parameter missing from request.")),
    ({"model": "wan2.2-kf2v-flash", "input": "x"},
     (400, "BadRequest.IllegalInput", "The input parameter requires json format.")),
    (body("wanx2.1-i2v-plus"), (400, "InvalidParameter", "Model not exist.")),
    (body(first_frame_url=None), (400, "InvalidParameter", "Field required: input.first_frame_url")),
    (body(last_frame_url=None), (400, "InvalidParameter", "Field required: input.last_frame_url")),
    (body(first_frame_url="ftp://x/y.png"), (400, "InvalidURL", "Invalid URL provided in your request.")),
    (body(params={"resolution": "4K"}),
     (400, "InvalidParameter", "The type or value of resolution is out of definition.")),
    (body("wanx2.1-kf2v-plus", params={"resolution": "480P"}),
     (400, "InvalidParameter", "The type or value of resolution is out of definition.")),
    (body(params={"duration": 10}),
     (400, "InvalidParameter", "The type or value of duration is out of definition.")),
    (body(params={"duration": True}),
     (400, "InvalidParameter", "The type or value of duration is out of definition.")),
    (body(params={"seed": -1}),
     (400, "InvalidParameter", "The type or value of seed is out of definition.")),
    (body(params={"seed": 2147483648}),
     (400, "InvalidParameter", "The type or value of seed is out of definition.")),
    (body(params={"seed": "7"}),
     (400, "InvalidParameter", "The type or value of seed is out of definition.")),
    (body(params={"watermark": "yes"}),
     (400, "InvalidParameter", "The type or value of watermark is out of definition.")),
    (body(params={"prompt_extend": 1}),
     (400, "InvalidParameter", "The type or value of prompt_extend is out of definition.")),
    (body(prompt=42), (400, "InvalidParameter", "The type or value of input.prompt is out of definition.")),
    (body(template="hanfu-1"),
     (400, "InvalidParameter", "The type or value of input.template is out of definition.")),
    (body("wanx2.1-kf2v-plus", template="squish"),
     (400, "InvalidParameter", "The type or value of input.template is out of definition.")),
    (body("wanx2.1-kf2v-plus", first_frame_url=None, template="hanfu-1"),
     (400, "InvalidParameter", "Field required: input.first_frame_url")),
])
def test_each_bad_body_gets_its_error(raw, expected):
    assert refused(raw) == expected


def test_singapore_names_the_plus_model_without_x():
    assert refused(body("wanx2.1-kf2v-plus"), SG) == (400, "InvalidParameter", "Model not exist.")
    assert refused(body("wan2.1-kf2v-plus"), BJ) == (400, "InvalidParameter", "Model not exist.")


def test_template_ignores_last_frame_and_prompt():
    spec = parse_create_body(body("wanx2.1-kf2v-plus", template="hanfu-1", prompt="p"), BJ)
    assert spec.template == "hanfu-1" and spec.last_frame_url is None and spec.prompt is None


# Anything JSON can carry, in the places the SDK puts things: the answer is a spec or a 4xx error.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=3),
    max_leaves=8)
fields = st.sampled_from(["prompt", "negative_prompt", "first_frame_url", "last_frame_url",
                          "template", "function", "extend_prompt"])
params = st.sampled_from(["resolution", "duration", "seed", "prompt_extend", "watermark", "size"])


@settings(max_examples=400, deadline=None)
@given(model=st.sampled_from(["wan2.2-kf2v-flash", "wanx2.1-kf2v-plus", "", None, 7]) | json_values,
       inputs=st.dictionaries(fields, json_values) | json_values,
       parameters=st.dictionaries(params, json_values) | json_values)
def test_any_body_gives_a_spec_or_a_client_error(model, inputs, parameters):
    try:
        spec = parse_create_body({"model": model, "input": inputs, "parameters": parameters}, BJ)
    except DashScopeError as error:
        assert 400 <= error.status < 500 and error.code and error.message
        return
    assert spec.model in BJ.models and spec.first_frame_url


def test_null_is_the_same_as_leaving_a_field_out():
    """docs/assumptions.md "JSON null": the Python SDK sends nulls, the Java SDK drops them."""
    nulls = dict(prompt=None, negative_prompt=None, template=None, extend_prompt=None)
    params = dict(resolution=None, duration=None, prompt_extend=None, watermark=None, seed=None)
    assert parse_create_body(body(params=params, **nulls), BJ) == parse_create_body(body(), BJ)
    no_parameters = body()
    no_parameters["parameters"] = None
    assert parse_create_body(no_parameters, BJ) == parse_create_body(body(), BJ)


def test_the_java_sdks_body_is_accepted():
    """java-sdk-wire.md: it always adds input.extend_prompt and parameters.with_audio."""
    raw = {"model": "wan2.2-kf2v-flash",
           "input": {"prompt": "p", "extend_prompt": True, "first_frame_url": URL,
                     "last_frame_url": URL},
           "parameters": {"with_audio": False, "prompt_extend": True, "resolution": "480P"}}
    assert parse_create_body(raw, BJ).resolution == "480P"
    raw["input"]["extend_prompt"] = "yes"  # typed like the other fields, though ignored
    assert refused(raw)[1] == "InvalidParameter"
