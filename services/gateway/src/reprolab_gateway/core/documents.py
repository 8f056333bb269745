"""Request bodies that are documents (environment specs): JSON or YAML, same shape either way.

People write specs as YAML files, tools send JSON; both parse to the same object, which a pydantic
model then checks. Parse errors name the line and column; shape errors name the field.

YAML is read with a stricter loader than ``yaml.safe_load``: aliases are refused (a few bytes of
nested aliases expand into gigabytes once turned into JSON), dates stay strings (JSON has none),
and only ``true``/``false`` are booleans (so ``on:`` or a package called ``yes`` is not turned
into ``true``, as YAML 1.1 would).
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import yaml
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from reprolab_common.errors import Invalid

from .problems import MalformedBody, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


class _StrictSafeLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in a spec", event.start_mark
            )
        return super().compose_node(parent, index)


_StrictSafeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes before and while reading."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; this endpoint accepts at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes, the most this endpoint accepts")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(
            f"the body is not UTF-8 (byte {exc.start})", errors=[("body", "not UTF-8")]
        ) from exc
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        msg = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise MalformedBody(f"malformed JSON at {msg}", errors=[("body", msg)]) from exc
    except _ConstantError as exc:
        raise MalformedBody(
            f"malformed JSON: {exc} is not a JSON number", errors=[("body", str(exc))]
        ) from exc
    except RecursionError as exc:
        raise MalformedBody(
            "the JSON document is nested too deeply", errors=[("body", "nested too deeply")]
        ) from exc


class _ConstantError(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _ConstantError(name)


def parse_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown position"
        msg = f"{where}: {problem}"
        raise MalformedBody(f"malformed YAML at {msg}", errors=[("body", msg)]) from exc
    except yaml.YAMLError as exc:
        raise MalformedBody(f"malformed YAML: {exc}", errors=[("body", str(exc))]) from exc
    except RecursionError as exc:
        raise MalformedBody(
            "the YAML document is nested too deeply", errors=[("body", "nested too deeply")]
        ) from exc


async def read_document(request: Request, model: type[M], limit: int) -> M:
    """Parse the body as JSON or YAML (by Content-Type; JSON when none is sent) and validate it."""
    kind = media_type(request)
    if kind and kind not in JSON_TYPES | YAML_TYPES and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {kind} is not accepted here; send application/json or application/yaml"
        )
    raw = await read_limited(request, limit)
    if not raw.strip():
        data: Any = {}
    elif kind in YAML_TYPES:
        data = parse_yaml(raw)
    else:
        data = parse_json(raw)
    if data is None:  # a YAML file holding only comments
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        ) from exc
    except RecursionError as exc:
        raise MalformedBody(
            "the document is nested too deeply", errors=[("body", "nested too deeply")]
        ) from exc


def to_json_text(value: Any, loc: str) -> str:
    """A parsed document as JSON text for the services (they canonicalise and validate it)."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{loc} holds a value JSON cannot carry: {exc}", errors=[(loc, str(exc))]) from exc
    except RecursionError as exc:
        raise Invalid(f"{loc} is nested too deeply", errors=[(loc, "nested too deeply")]) from exc


def openapi_document_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` describing a body read by ``read_document``: one schema, JSON or YAML (an empty
    body reads as ``{}``, so it is optional where ``{}`` is valid)."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": required,
            "content": {
                "application/json": {"schema": schema},
                "application/yaml": {"schema": schema},
            },
        }
    }
