"""Reprolab message contracts, generated from proto/reprolab/v1."""
