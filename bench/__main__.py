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
    matching_quality,
    matching_speed,
    webhook_isolation,
    workspace_pages,
)

BENCHMARKS = {
    "alert-latency": alert_latency.run,
    "api-throughput": api_throughput.run,
    "api-conformance": api_conformance.run,
    "matching-quality": matching_quality.run,
    "matching-speed": matching_speed.run,
    "webhook-isolation": webhook_isolation.run,
    "workspace-pages": workspace_pages.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="default: all")
    args = parser.parse_args()
    results = {
        "date": datetime.now(UTC).date().isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "results": {},
    }
    for name in args.names or BENCHMARKS:
        print(f"running {name} ...", flush=True)
        results["results"][name] = BENCHMARKS[name]()
        print(json.dumps(results["results"][name], indent=2), flush=True)
    out = Path("bench/results") / f"{results['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    # Running some benchmarks keeps the figures the others wrote earlier that day.
    if out.exists():
        results["results"] = {**json.loads(out.read_text()).get("results", {}), **results["results"]}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
