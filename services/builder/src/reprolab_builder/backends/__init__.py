"""Build backends, chosen by REPROLAB_BUILDER_BACKEND through a small registry (importing the
modules registers them)."""

from . import buildah, docker, kubernetes  # noqa: F401
from .base import BuildBackend, BuildError, BuildResult, backend_class, register

__all__ = ["BuildBackend", "BuildError", "BuildResult", "backend_class", "register"]
