"""Reprolab audit service: the tamper-evident, per-workspace activity log."""
