"""``make bench``: run the benchmarks and write their figures to bench/results/."""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    alert_latency,
    api_conformance,
    api_throughput,
    cold_start,
    matching_quality,
    matching_quality_dutch,
    matching_quality_served,
    matching_speed,
    regions,
    restart_readiness,
    webhook_isolation,
    worker_scale,
    workspace_pages,
)
from services.matching.ranking.scoring import RANKING_VERSION

BENCHMARKS = {
    "alert-latency": alert_latency.run,
    "api-throughput": api_throughput.run,
    "api-conformance": api_conformance.run,
    "cold-start": cold_start.run,
    "matching-quality": matching_quality.run,
    "matching-quality-served": matching_quality_served.run,
    "matching-quality-dutch": matching_quality_dutch.run,
    "matching-speed": matching_speed.run,
    "regions": regions.run,
    "restart-readiness": restart_readiness.run,
    "matching-speed-in-process": matching_speed.run_in_process,
    "webhook-isolation": webhook_isolation.run,
    "workspace-pages": workspace_pages.run,
    "worker-scale": worker_scale.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="default: all")
    args = parser.parse_args()
    started = datetime.now(UTC)
    results = {
        "date": started.date().isoformat(),
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or platform.system()}",
        "cores": os.cpu_count(),
        # One-minute load average before the run: the machine is shared, so figures are read against it.
        "load_before": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "ranking_version": RANKING_VERSION,
        "results": {},
    }
    for name in args.names or BENCHMARKS:
        print(f"running {name} ...", flush=True)
        results["results"][name] = BENCHMARKS[name]()
        print(json.dumps(results["results"][name], indent=2), flush=True)
    results["load_after"] = round(os.getloadavg()[0], 2)
    # One file per run, committed: the date and time it started, and the ranking it measured.
    stamp = started.strftime("%Y-%m-%dT%H%M%S")
    out = Path("bench/results") / f"{stamp}-{RANKING_VERSION}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
