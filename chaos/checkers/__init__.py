"""Checkers: pure functions from what a run recorded to findings (Jepsen's idea: record histories, then check them)."""
