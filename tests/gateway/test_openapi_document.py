"""The gateway's OpenAPI document (``/api/v1/openapi.json``) is one that tools can read whole: valid OpenAPI
3.1, each operation named once, every ``$ref`` pointing at something, every path parameter declared once.

Swagger UI, the CLI's generated calls and schemathesis all key operations by ``operationId`` and follow
``$ref``s; a duplicate or a dangling one does not fail a request, it quietly drops an operation or a schema from
what those tools show. A new route cannot tell, so the document is checked here as a whole, built in-process
from the same ``create_app`` the service runs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate
from reprolab_gateway.main import create_app

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def document() -> dict:
    return create_app().openapi()


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def refs(node: object, where: str = "#") -> Iterator[tuple[str, str]]:
    """Every ``$ref`` under ``node``, with the JSON pointer of the object that holds it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs(value, f"{where}/{i}")


def resolve(document: dict, ref: str) -> object:
    """The object a local ``$ref`` (``#/a/b~1c``) points at; KeyError if there is none."""
    assert ref.startswith("#/"), f"not a reference inside the document: {ref}"
    node: object = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    return node


def test_the_document_is_valid_openapi_3_1(document) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_operation_has_its_own_operation_id(document) -> None:
    ids = Counter(op.get("operationId") for _, _, op in operations(document))
    assert None not in ids, "an operation without an operationId"
    assert len(ids) > 100  # the whole API, not an empty document
    assert not [i for i, n in ids.items() if n > 1], [i for i, n in ids.items() if n > 1]


def test_every_reference_points_at_something(document) -> None:
    found = list(refs(document))
    assert any(ref.startswith("#/components/schemas/") for _, ref in found)
    dangling = []
    for where, ref in found:
        try:
            resolve(document, ref)
        except (KeyError, IndexError, ValueError):
            dangling.append(f"{where}: {ref}")
    assert not dangling, dangling


def test_every_path_parameter_is_declared_once(document) -> None:
    wrong = []
    for path, method, operation in operations(document):
        templated = re.findall(r"\{([^}/]+)\}", path)
        declared = Counter((p["name"], p["in"]) for p in operation.get("parameters", []))
        twice = [f"{name} ({where})" for (name, where), n in declared.items() if n > 1]
        in_path = {name for name, where in declared if where == "path"}
        if twice or in_path != set(templated) or len(templated) != len(set(templated)):
            wrong.append(f"{method.upper()} {path}: template {templated}, declared {sorted(in_path)}, twice {twice}")
    assert not wrong, wrong


def test_every_schema_has_its_own_name(document) -> None:
    """Two models of one class name make FastAPI name both by their module (``reprolab_gateway__api__...``):
    clients generated from the document then get those names, and Swagger UI shows them."""
    names = list(document["components"]["schemas"])
    assert len(names) > 50
    qualified = [n for n in names if "__" in n]
    assert not qualified, f"schemas named by their module (rename one of the models): {qualified}"
