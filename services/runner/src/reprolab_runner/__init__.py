"""Reprolab runner service."""
