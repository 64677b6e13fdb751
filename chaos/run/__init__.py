"""Running experiments: lifecycle, checks, events, journal, verdict (faults: chaos.faults)."""

from chaos.run.runner import Runner, RunOptions, RunResult
from chaos.run.verdict import Verdict

__all__ = ["RunOptions", "RunResult", "Runner", "Verdict"]
