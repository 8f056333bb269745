"""Build backends, chosen by REPROLAB_BUILDER_BACKEND through a small registry."""

from .base import BuildBackend, BuildError, BuildResult, backend_class, register

__all__ = ["BuildBackend", "BuildError", "BuildResult", "backend_class", "register"]
