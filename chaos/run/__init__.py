"""Running experiments: lifecycle, faults, checks, events, journal."""

from chaos.run.runner import Runner, RunOptions, RunResult
from chaos.run.verdict import Verdict

__all__ = ["RunOptions", "RunResult", "Runner", "Verdict"]
