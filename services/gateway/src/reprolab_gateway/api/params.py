"""Path parameters declared once, with the patterns the services enforce, so the OpenAPI document
says what is refused (and FastAPI refuses it with a 422 naming the parameter before any service call)."""

from typing import Annotated

from fastapi import Path

from ..schemas import INT32_MAX, MODEL_NAME_PATTERN, NAME_PATTERN, USERNAME_PATTERN

_NAME = "1-63 lower-case letters, digits and '-', starting with a letter or digit."
WsPath = Annotated[str, Path(pattern=NAME_PATTERN, description=f"Workspace slug: {_NAME}")]
EnvPath = Annotated[str, Path(pattern=NAME_PATTERN, description=f"Environment name: {_NAME}")]
AssignmentPath = Annotated[str, Path(pattern=NAME_PATTERN, description=f"Assignment name: {_NAME}")]
# The vendors the runner keeps credentials for (reprolab_runner.credstore.VENDORS).
VENDORS = ("aws", "azure", "openstack")
MemberPath = Annotated[str, Path(pattern=USERNAME_PATTERN, description="A member's username.")]
_MODEL = "1-63 lower-case letters, digits and '-', starting with a letter."
ModelPath = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description=f"A deployed model's name: {_MODEL}")]
VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="A model version: 1, 2, ...")]
