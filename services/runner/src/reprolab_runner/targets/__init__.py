"""Run targets, chosen per run by name through a small registry (importing the modules registers them)."""

from . import aws, azure, kubernetes, local, openstack  # noqa: F401
from .base import Target, TargetError, register, target_class

__all__ = ["Target", "TargetError", "register", "target_class"]
