"""Reprolab builder service."""
