"""The OpenAPI document of the model-serving surface (``GET /serve/openapi.json``).

``/serve/...`` is not part of ``/api/v1/openapi.json``: it is the Open Inference Protocol v2 REST surface of
each deployed model, answered by the model's own server behind the proxy, with the protocol's error shape
(``{"error": "..."}``) rather than the API's problem documents. This document describes it the way the
protocol's published schema does (KServe's ``rest_predict_v2.yaml``: ``InferenceRequest``,
``InferenceResponse``, ``MetadataModelResponse``...), plus what Reprolab adds: the rows form
(``.../predict``), label feedback, the bearer key and the proxy's 401/404/413/429/502/503 answers.
``tests/serving/test_serve_gateway.py`` validates the document and checks real answers against its schemas.
"""

from __future__ import annotations

from typing import Any

DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
             "FP64", "BYTES"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "401": _json(_ref("Error"), "No key or token, or one that is not valid for this model."),
    "404": _json(_ref("Error"), "No such model or version is served in the workspace (or the caller may not see "
                                "it)."),
    "429": _json(_ref("Error"), "The key's (or user's) requests per minute are spent; see Retry-After."),
    "502": _json(_ref("Error"), "The model's server did not answer; try again shortly."),
    "503": _json(_ref("Error"), "The version is still deploying (Retry-After), or a platform service is down."),
}
_BAD = {"400": _json(_ref("Error"), "The body does not fit the protocol or the model (shape, datatype, names)."),
        "413": _json(_ref("Error"), "The body is larger than the gateway accepts.")}

_WS = {"name": "ws", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
       "description": "The workspace."}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
         "description": "The model (it appears twice: the proxy's address and the protocol's model name)."}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "A version of the model (1, 2, ...): answered by that version's server whether or not "
                           "it is the active one."}


def _op(summary: str, ok: dict[str, Any], *, body: dict[str, Any] | None = None, bad: bool = False,
        params: list[dict[str, Any]] | None = None, tag: str = "inference") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "parameters": params or [_WS, _NAME],
                          "responses": {"200": ok, **(_BAD if bad else {}), **_ERRORS}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _model_paths(prefix: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        prefix: {"get": _op("The model's metadata: its versions, platform and input tensors.",
                            _json(_ref("MetadataModelResponse"), "The model's metadata."), params=params)},
        f"{prefix}/ready": {"get": _op("Whether the model is ready to predict.",
                                       {"description": "Ready (an empty body)."}, params=params)},
        f"{prefix}/infer": {"post": _op("Predict from typed tensors.",
                                        _json(_ref("InferenceResponse"), "The output tensors; X-Request-Id names "
                                                                         "the request for later feedback."),
                                        body=_ref("InferenceRequest"), bad=True, params=params)},
        f"{prefix}/predict": {"post": _op("Predict from plain rows (Reprolab's form for people and scripts).",
                                          _json(_ref("PredictResponse"), "One prediction per row."),
                                          body=_ref("PredictRequest"), bad=True, params=params)},
    }


def document(server_version: str = "") -> dict[str, Any]:
    base = "/serve/{ws}/{name}/v2"
    tensor_data = {"description": "The tensor's elements, flat in row-major order or nested to its shape.",
                   "oneOf": [{"type": "array"}, {"type": "number"}, {"type": "string"}, {"type": "boolean"}]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Reprolab model serving (Open Inference Protocol v2)",
            "version": server_version or "1",
            "description": "A deployed model's stable address. Send `Authorization: Bearer <key>` with one of the "
                           "model's API keys (`rlm_...`) or your Reprolab API token (as a workspace member). "
                           "Errors are `{\"error\": \"...\"}` as the protocol says. The platform's own API is "
                           "described at /api/v1/openapi.json.",
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{base}/health/live": {"get": _op("Whether the model's server is live.",
                                               {"description": "Live (an empty body)."})},
            f"{base}/health/ready": {"get": _op("Whether the model's server is ready.",
                                                {"description": "Ready (an empty body)."})},
            **_model_paths(f"{base}/models/{{name}}", [_WS, _NAME]),
            **_model_paths(f"{base}/models/{{name}}/versions/{{version}}", [_WS, _NAME, _VERSION]),
            "/serve/{ws}/{name}/feedback": {"post": _op(
                "True labels, later, by the request ids the answers carried (X-Request-Id; a request of several "
                "rows: <id>:<row>). They give the monitoring's accuracy.",
                _json(_ref("FeedbackResponse"), "How many labels were accepted."), body=_ref("FeedbackRequest"),
                bad=True, tag="monitoring")},
            "/metrics": {"get": {"summary": "Prometheus metrics of the serving proxy (a platform admin's token).",
                                 "tags": ["monitoring"],
                                 "responses": {"200": {"description": "Prometheus text format.",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}},
                                               "401": {"description": "No valid token."},
                                               "403": {"description": "Not a platform admin."}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A model API key (rlm_...) or a Reprolab API token."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Parameters": {"type": "object", "additionalProperties": True},
                "MetadataTensor": {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
                    "name": {"type": "string"}, "datatype": {"type": "string", "enum": DATATYPES},
                    "shape": {"type": "array", "items": {"type": "integer"}}}},
                "MetadataModelResponse": {"type": "object", "required": ["name", "platform"], "properties": {
                    "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
                    "platform": {"type": "string"},
                    "inputs": {"type": "array", "items": _ref("MetadataTensor")},
                    "outputs": {"type": "array", "items": _ref("MetadataTensor")}}},
                "RequestInput": {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
                    "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": {"type": "string", "enum": DATATYPES}, "parameters": _ref("Parameters"),
                    "data": tensor_data}},
                "RequestOutput": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "parameters": _ref("Parameters")}},
                "InferenceRequest": {"type": "object", "required": ["inputs"], "properties": {
                    "id": {"type": "string"}, "parameters": _ref("Parameters"),
                    "inputs": {"type": "array", "items": _ref("RequestInput")},
                    "outputs": {"type": "array", "items": _ref("RequestOutput")}}},
                "ResponseOutput": {"type": "object", "required": ["name", "shape", "datatype", "data"],
                                   "properties": {
                                       "name": {"type": "string"},
                                       "shape": {"type": "array", "items": {"type": "integer"}},
                                       "datatype": {"type": "string", "enum": DATATYPES},
                                       "parameters": _ref("Parameters"), "data": tensor_data}},
                "InferenceResponse": {"type": "object", "required": ["model_name", "outputs"], "properties": {
                    "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
                    "parameters": _ref("Parameters"),
                    "outputs": {"type": "array", "items": _ref("ResponseOutput")}}},
                "PredictRequest": {"type": "object", "required": ["rows"], "properties": {"rows": {
                    "type": "array", "minItems": 1,
                    "description": "Rows as lists of feature values in the order the model was trained with, or "
                                   "as objects of feature name to value (the same names in every row).",
                    "items": {"oneOf": [{"type": "array"}, {"type": "object"}]}}}},
                "PredictResponse": {"type": "object", "required": ["predictions"], "properties": {
                    "model_name": {"type": "string"}, "model_version": {"type": "string"},
                    "predictions": {"type": "array"}}},
                "FeedbackRequest": {"type": "object", "required": ["labels"], "properties": {"labels": {
                    "type": "object", "minProperties": 1, "additionalProperties": True,
                    "description": "Request id (X-Request-Id, or <id>:<row>) to the true label."}}},
                "FeedbackResponse": {"type": "object", "required": ["accepted"],
                                     "properties": {"accepted": {"type": "integer"}}},
            },
        },
    }
