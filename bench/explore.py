"""What exploring costs and how fast it finds a planted bug.

For each seed, runs ``chaos.explore.explore`` on a base experiment (default:
fixtures/explore/edge-slot-leak.yaml, the planted edge-slot-leak) and
reports examples per minute and the time to the first failing example
(search time, shrinking excluded), then the median and spread over seeds.
``--unmodified`` runs the same base with ``PLANTED_BUG: ""`` (nothing should
be found). ``--base fixtures/explore/edge-no-fence.yaml`` (with ``--faults
pause --services host --max-faults 1 --min-for 5s``) measures the split
brain. Nothing is asserted; the figures go to the README with this command
line.

    .venv/bin/python bench/explore.py --backend local --seeds 1 2 3 --budget 5m
    .venv/bin/python bench/explore.py --backend local --seeds 1 2 3 --budget 5m --unmodified
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

from chaos.experiment.durations import parse_duration
from chaos.explore import explore
from chaos.explore.schedule import Limits

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "fixtures" / "explore" / "edge-slot-leak.yaml"


def one(base: Path, backend: str, seed: int, budget: float, args: argparse.Namespace, work: Path) -> dict[str, object]:
    report = explore(base, budget, backend=backend, seed=seed, reruns=args.reruns, out_dir=work / f"explored-{seed}",
                     shrink_budget_s=args.shrink_budget, limits=Limits(args.max_faults, args.horizon, args.min_for, args.max_for, args.total_loss),
                     small_first=args.small_first, faults=args.faults, services=args.services, links=args.links, journal_dir=work / "journals",
                     database=work / f"db-{seed}")
    journal = json.loads(report.journal.read_text())
    runs = journal["runs"]
    elapsed, to_failure = 0.0, None
    for run in runs:
        elapsed += run["seconds"]
        if run["outcome"] == "failed" and to_failure is None:
            to_failure = elapsed
    search_runs = [r for r in runs if r["phase"] == "search"]
    search_s = sum(r["seconds"] for r in search_runs)
    return {"seed": seed, "status": report.status, "runs": len(runs), "to_first_failure_s": to_failure,
            "examples_per_min": (60 * len(search_runs) / search_s) if search_s else None,
            "reruns_failed": journal["reruns_failed"], "written": journal["written"]}


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="local", choices=["local", "docker"])
    parser.add_argument("--base", type=Path, default=BASE)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=parse_duration, default=300.0)
    parser.add_argument("--shrink-budget", type=parse_duration, default=120.0)
    parser.add_argument("--reruns", type=int, default=5)
    parser.add_argument("--max-faults", type=int, default=3)
    parser.add_argument("--horizon", type=parse_duration, default=8.0)
    parser.add_argument("--min-for", type=parse_duration, default=0.5)
    parser.add_argument("--max-for", type=parse_duration, default=8.0)
    parser.add_argument("--faults", type=lambda s: s.split(","), default=None)
    parser.add_argument("--services", type=lambda s: s.split(","), default=None)
    parser.add_argument("--links", type=lambda s: s.split(","), default=None)
    parser.add_argument("--total-loss", action="store_true", help="also schedules that take a whole service down")
    parser.add_argument("--small-first", type=float, default=0.5, help="share of the budget for singles, then pairs")
    parser.add_argument("--unmodified", action="store_true", help='the base with PLANTED_BUG: "" (no bug)')
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rq-bench-explore-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("ROOMQUAKE_STATE_DIR", str(work / "state"))
        base = args.base
        if args.unmodified:
            base = work / "unmodified.yaml"
            text = args.base.read_text()
            base.write_text(re.sub(r"PLANTED_BUG: [a-z-]+", 'PLANTED_BUG: ""', text))
        samples = []
        for seed in args.seeds:
            sample = one(base, args.backend, seed, args.budget, args, work)
            samples.append(sample)
            print(json.dumps(sample), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; backend {args.backend}; budget {args.budget:g}s")
    print("examples per minute:", spread([s["examples_per_min"] for s in samples if s["examples_per_min"]]))  # type: ignore[misc]
    print("seconds to the first failing example:",
          spread([s["to_first_failure_s"] for s in samples if s["to_first_failure_s"] is not None]))  # type: ignore[misc]
    print("status per seed:", ", ".join(f"{s['seed']}: {s['status']} ({s['reruns_failed']} reruns failed)" for s in samples))
    if args.json:
        args.json.write_text(json.dumps(samples, indent=2))


if __name__ == "__main__":
    sys.exit(main())
