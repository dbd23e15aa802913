"""The DashScope error catalogue and the exception that carries one entry to the client.

Every error the emulator can answer with is listed once in ``CATALOGUE`` with its HTTP status, its
``code`` and its exact ``message`` as documented (sources: ``shared/spec/api-facts.md`` §5, §6, §9).
Handlers never build error JSON by hand: they raise ``DashScopeError`` and the error middleware
renders ``{"request_id", "code", "message"}``.
"""

from __future__ import annotations

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
    "model_not_exist": _spec(400, "InvalidParameter", "Model not exist."),
    # Templated messages: ``{field}`` / ``{parameter}`` are filled by ``DashScopeError.of``.
    "field_required": _spec(400, "InvalidParameter", "Field required: {field}"),
    "out_of_definition": _spec(
        400, "InvalidParameter", "The type or value of {parameter} is out of definition."),
    "empty_input": _spec(
        400, "BadRequest.EmptyInput", "Required input parameter missing from request."),
    "empty_parameters": _spec(
        400, "BadRequest.EmptyParameters", 'Required parameter "parameters" missing from request.'),
    "empty_model": _spec(
        400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'),
    "illegal_input": _spec(
        400, "BadRequest.IllegalInput", "The input parameter requires json format."),
    "invalid_url": _spec(400, "InvalidURL", "Invalid URL provided in your request."),
    "unsupported_cancel": _spec(
        400, "UnsupportedOperation",
        "Failed to cancel the task, please confirm if the task is in PENDING status."),
    "unsupported_operation": _spec(
        400, "UnsupportedOperation", "The operation is unsupported on the referee object."),
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
    "oss_resolve_missing": _spec(
        400, "invalid_parameter_error",
        "InternalError.Algo.InvalidParameter: The provided URL does not appear to be valid. "
        "Ensure it is correctly formatted."),
    "payload_too_large": _spec(413, "BadRequest.TooLarge", "Payload Too Large."),
    # --- 400: content moderation ------------------------------------------------------------------
    "data_inspection_failed": _spec(
        400, "DataInspectionFailed", "Input or output data may contain inappropriate content."),
    "ip_infringement": _spec(
        400, "IPInfringementSuspect",
        "Input data is suspected of being involved in IP infringement."),
    "arrearage": _spec(
        400, "Arrearage",
        "Access denied, please make sure your account is in good standing."),
    # --- 401 / 403: keys and access --------------------------------------------------------------
    "no_api_key": _spec(401, "InvalidApiKey", "No API-key provided."),
    "invalid_api_key": _spec(401, "InvalidApiKey", "Invalid API-key provided."),
    # The kf2v page quotes this message without a trailing period (api-facts §0, [SEED]).
    "sync_not_supported": _spec(
        403, "AccessDenied", "current user api does not support synchronous calls"),
    "access_denied": _spec(403, "AccessDenied", "Access denied."),
    "policy_expired": _spec(403, "AccessDenied", "Invalid according to Policy: Policy expired."),
    "model_access_denied": _spec(403, "Model.AccessDenied", "Model access denied."),
    "unpurchased": _spec(
        403, "AccessDenied.Unpurchased",
        "Access to model denied. Please make sure you are eligible for using the model."),
    "free_tier_only": _spec(
        403, "AllocationQuota.FreeTierOnly",
        'The free tier of the model has been exhausted. If you want to continue access the model '
        'on a paid basis, please disable the "use free tier only" mode.'),
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
    "internal_timeout": _spec(
        500, "InternalError.Timeout",
        "An internal timeout error has occured during execution, try again later or contact "
        "service support."),
    "internal_upload": _spec(500, "InternalError.Upload", "Failed to upload result."),
    "model_unavailable": _spec(503, "ModelUnavailable", "Model is unavailable, try again later."),
}


class DashScopeError(Exception):
    """An answer the real service would give as ``{"request_id", "code", "message"}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, name: str, **fields: str) -> "DashScopeError":
        """The catalogue entry ``name``, with ``{placeholders}`` in its message filled from ``fields``."""
        spec = CATALOGUE[name]
        message = spec.message.format(**fields) if fields else spec.message
        return cls(spec.status, spec.code, message)

    def body(self, request_id: str) -> dict[str, str]:
        return {"request_id": request_id, "code": self.code, "message": self.message}
