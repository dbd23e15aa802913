"""The DashScope error catalogue and the exception that carries one entry to the client.

Every error the emulator can answer with is listed once in ``CATALOGUE`` with its HTTP status, its
``code`` and its exact ``message`` as documented (sources: ``shared/spec/api-facts.md`` §5, §6, §9).
Handlers never build error JSON by hand: they raise ``DashScopeError`` and the error middleware
renders ``{"request_id", "code", "message"}``.
"""

from __future__ import annotations

import string
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    code: str
    message: str


def _spec(status: int, code: str, message: str) -> ErrorSpec:
    return ErrorSpec(status, code, message)


# Keys are stable names used in code and in the docs table; values are what goes on the wire.
CATALOGUE: dict[str, ErrorSpec] = {
    # --- 400: request shape and parameters -------------------------------------------------------
    "invalid_parameter": _spec(
        400, "InvalidParameter",
        "Required parameter(s) missing or invalid, please check the request parameters."),
    "invalid_body": _spec(
        400, "InvalidParameter", "Required body invalid, check the request body format."),
    "invalid_parameter_named": _spec(
        400, "InvalidParameter",
        "Required parameter({field}) missing or invalid, check the request parameters."),
    "model_not_exist": _spec(400, "InvalidParameter", "Model not exist."),
    # Templated messages: ``{field}`` / ``{parameter}`` are filled by ``DashScopeError.of``.
    "field_required": _spec(400, "InvalidParameter", "Field required: {field}"),
    "out_of_definition": _spec(
        400, "InvalidParameter", "The type or value of {parameter} is out of definition."),
    "parameters_specification": _spec(
        400, "InvalidParameter", "the parameters must conform to the specification: {detail}."),
    # The documented FAILED-task example ([QW-KF2V]).
    "parameter_not_valid": _spec(400, "InvalidParameter", "The specified parameter is not valid."),
    "empty_input": _spec(
        400, "BadRequest.EmptyInput", "Required input parameter missing from request."),
    "empty_parameters": _spec(
        400, "BadRequest.EmptyParameters", 'Required parameter "parameters" missing from request.'),
    "empty_model": _spec(
        400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'),
    "illegal_input": _spec(
        400, "BadRequest.IllegalInput", "The input parameter requires json format."),
    "invalid_url": _spec(400, "InvalidURL", "Invalid URL provided in your request."),
    "url_missing": _spec(
        400, "InvalidURL", "Required URL is missing or invalid, check the request URL."),
    "url_connection_refused": _spec(
        400, "InvalidURL.ConnectionRefused",
        "Connection to {url} refused, please provide available URL."),
    "url_timeout": _spec(
        400, "InvalidURL.Timeout", "Download {url} timeout, check network connection."),
    "unsupported_operation": _spec(
        400, "UnsupportedOperation", "The operation is unsupported on the referee object."),
    "unsupported_cancel": _spec(
        400, "UnsupportedOperation",
        "Failed to cancel the task, please confirm if the task is in PENDING status."),
    # --- 400: media intake and data inspection ---------------------------------------------------
    "media_format": _spec(
        400, "InvalidParameter.DataInspection",
        "The media format is not supported or incorrect for the data inspection."),
    "media_download_failed": _spec(
        400, "InvalidParameter.DataInspection",
        "Unable to download the media resource during the data inspection process."),
    "media_download_timeout": _spec(
        400, "InvalidParameter.DataInspection",
        "Download the media resource timed out during the data inspection process."),
    "media_unauthorized": _spec(
        400, "InvalidParameter",
        "Don't have authorization to access the media resource during the data inspection process."),
    "image_decode_failed": _spec(
        400, "InvalidParameter", "Failed to decode the image during the data inspection."),
    "image_size_unsupported": _spec(
        400, "InvalidParameter", "The image size is not supported for the data inspection."),
    "image_too_small_or_large": _spec(
        400, "InvalidParameter", "the size of input image is too small or too large."),
    # Verbatim, without a trailing period ([ERR-QC]).
    "image_corrupted": _spec(400, "InvalidParameter", "Invalid image format or corrupted file"),
    "multimodal_download_failed": _spec(
        400, "InvalidParameter", "Failed to download multimodal content."),
    "image_file_format": _spec(
        400, "InvalidImage.FileFormat",
        "Invalid image type. Ensure the uploaded file is a valid image."),
    "oss_resolve_missing": _spec(
        400, "invalid_parameter_error",
        "InternalError.Algo.InvalidParameter: The provided URL does not appear to be valid. "
        "Ensure it is correctly formatted."),
    "payload_too_large": _spec(413, "BadRequest.TooLarge", "Payload Too Large."),
    # --- 400: content moderation ------------------------------------------------------------------
    "data_inspection_failed": _spec(
        400, "DataInspectionFailed", "Input or output data may contain inappropriate content."),
    "input_inspection_failed": _spec(
        400, "DataInspectionFailed", "Input data may contain inappropriate content."),
    "input_kind_inspection_failed": _spec(
        400, "DataInspectionFailed", "Input {kind} data may contain inappropriate content."),
    # Moderation of the generated video can only fail the task, at its end.
    "output_inspection_failed": _spec(
        400, "DataInspectionFailed", "Output data may contain inappropriate content."),
    "ip_infringement": _spec(
        400, "IPInfringementSuspect",
        "Input data is suspected of being involved in IP infringement."),
    "arrearage": _spec(
        400, "Arrearage",
        "Access denied, please make sure your account is in good standing."),
    # --- 401 / 403: keys and access --------------------------------------------------------------
    "invalid_api_key": _spec(401, "InvalidApiKey", "Invalid API-key provided."),
    "no_api_key": _spec(401, "InvalidApiKey", "No API-key provided."),
    "access_denied": _spec(403, "AccessDenied", "Access denied."),
    # The kf2v page quotes this message without a trailing period (api-facts §0, [SEED]).
    "sync_not_supported": _spec(
        403, "AccessDenied", "current user api does not support synchronous calls"),
    "async_not_supported": _spec(
        403, "AccessDenied", "Current user api does not support asynchronous calls."),
    "policy_expired": _spec(403, "AccessDenied", "Invalid according to Policy: Policy expired."),
    "model_access_denied": _spec(403, "Model.AccessDenied", "Model access denied."),
    "workspace_access_denied": _spec(403, "Workspace.AccessDenied", "Workspace access denied."),
    "app_access_denied": _spec(403, "App.AccessDenied", "App access denied."),
    "unpurchased": _spec(
        403, "AccessDenied.Unpurchased",
        "Access to model denied. Please make sure you are eligible for using the model."),
    "free_tier_only": _spec(
        403, "AllocationQuota.FreeTierOnly",
        'The free tier of the model has been exhausted. If you want to continue access the model '
        'on a paid basis, please disable the "use free tier only" mode.'),
    "model_not_found": _spec(404, "ModelNotFound", "Model can not be found."),
    # --- 404 / 405: routing (no documented answer; see docs/assumptions.md) -----------------------
    "url_not_found": _spec(
        404, "InvalidURL", "Required URL is missing or invalid, check the request URL."),
    "method_not_allowed": _spec(
        405, "InvalidURL", "Required URL is missing or invalid, check the request URL."),
    "request_timeout": _spec(408, "RequestTimeOut", "Request timed out, please try again later."),
    # --- 429: throttling ---------------------------------------------------------------------------
    "throttling": _spec(429, "Throttling", "Requests throttling triggered."),
    "throttling_rate": _spec(
        429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    "throttling_burst": _spec(
        429, "Throttling.BurstRate",
        "Request rate increased too quickly. To ensure system stability, please adjust your "
        "client logic to scale requests more smoothly over time."),
    "throttling_allocation": _spec(
        429, "Throttling.AllocationQuota",
        "Allocated quota exceeded, please increase your quota limit."),
    # --- 5xx ---------------------------------------------------------------------------------------
    "internal_error": _spec(
        500, "InternalError",
        "An internal error has occured, please try again later or contact service support."),
    "internal_algo": _spec(
        500, "InternalError.Algo", "An internal error has occured during algorithm execution."),
    "internal_algo_inference": _spec(500, "InternalError.Algo", "inference internal error."),
    "internal_timeout": _spec(
        500, "InternalError.Timeout",
        "An internal timeout error has occured during execution, try again later or contact "
        "service support."),
    "internal_upload": _spec(500, "InternalError.Upload", "Failed to upload result."),
    "model_unavailable": _spec(503, "ModelUnavailable", "Model is unavailable, try again later."),
}


# What fills a templated message when the entry is produced on demand (a fault rule, a scenario)
# rather than by a handler that knows the real field.
EXAMPLE_FIELDS = {"field": "input.first_frame_url", "parameter": "parameters.resolution",
                  "detail": "parameters.duration", "url": "https://example.com/first_frame.png",
                  "kind": "image"}


def placeholders(message: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(message) if name]


def example_message(name: str) -> str:
    """The entry's message with any ``{placeholder}`` filled from ``EXAMPLE_FIELDS``."""
    message = CATALOGUE[name].message
    return message.format(**EXAMPLE_FIELDS) if placeholders(message) else message


def default_name_for_code(code: str) -> str | None:
    """The catalogue entry a bare ``code`` stands for: its first entry (the catalogue is ordered so
    the generic message of each code comes first)."""
    return next((name for name, spec in CATALOGUE.items() if spec.code == code), None)


def lookup(name_or_code: str) -> str | None:
    """A catalogue key given either the key itself or a DashScope ``code``."""
    if name_or_code in CATALOGUE:
        return name_or_code
    return default_name_for_code(name_or_code)


def markdown_table() -> str:
    """``docs/errors.md``, generated from the catalogue (``python -m mock_server.errors``)."""
    lines = [
        "# Error catalogue",
        "",
        "Generated from `mock_server/tasks/errors.py` by `python -m mock_server.tasks.errors > docs/errors.md`;",
        "a test fails when this file is stale. Every entry can be produced on demand with a fault",
        'rule (`{"error": {"name": "<name>"}}` or `{"error": {"code": "<code>"}}`) or the in-band',
        "scenario `error:<name>` / `error:<code>`; a bare code means the first entry of that code",
        "(marked *default*). `{placeholders}` are filled by the emulator where it knows the value, and",
        "with the example shown when produced on demand.",
        "",
        "| name | HTTP | code | message |",
        "|---|---|---|---|",
    ]
    for name, spec in CATALOGUE.items():
        default = " *(default)*" if default_name_for_code(spec.code) == name else ""
        message = spec.message.replace("|", "\\|")
        if placeholders(spec.message):
            message += f" (e.g. “{example_message(name)}”)"
        lines.append(f"| `{name}` | {spec.status} | `{spec.code}`{default} | {message} |")
    return "\n".join(lines) + "\n"


class DashScopeError(Exception):
    """An answer the real service would give as ``{"request_id", "code", "message"}``.

    ``reason`` is the emulator's own explanation of why (which field, which URL, which rule): it
    never changes the body, and goes to the log line, the journal and ``X-Kf2v-Mock-Reason``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 reason: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.reason = reason

    @classmethod
    def of(cls, name: str, *, reason: str | None = None, **fields: str) -> "DashScopeError":
        """The catalogue entry ``name``, with ``{placeholders}`` in its message filled from ``fields``
        and the check's ``reason``."""
        spec = CATALOGUE[name]
        message = spec.message.format(**fields) if fields else spec.message
        return cls(spec.status, spec.code, message, reason=reason)

    @classmethod
    def mock(cls, message: str) -> "DashScopeError":
        """A bad request to the emulator's own controls (``/_mock/``, scenarios): not a service
        answer, but shaped like one so every client can read it."""
        return cls(400, "InvalidParameter", message, reason=message)

    def because(self, reason: str) -> "DashScopeError":
        """This error with ``reason`` (kept if one was already given further in)."""
        if self.reason is None:
            self.reason = reason
        return self

    def body(self, request_id: str) -> dict[str, str]:
        return {"request_id": request_id, "code": self.code, "message": self.message}


def quoted(value: object, limit: int = 80) -> str:
    """A client-supplied value (a URL, a key, a prompt) as a reason shows it: quoted, and cut to
    ``limit`` characters (a data URL is megabytes)."""
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[:limit - 1] + "…"
    if len(value) > limit:
        value = value[:limit - 1] + "…"
    return repr(value)


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
