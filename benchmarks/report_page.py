"""The run report's weight (goal: <= 5 MB for the default run) and build time, from the stage
outputs already in this folder (run it where `dvc repro` ran; nothing is written outside a temp dir).

    python benchmarks/report_page.py [--params params.yaml] [--repeat 3]

Prints build seconds and bytes per kind of file (page, camera pictures, finding thumbnails, charts).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from camtune.core import config
    from camtune.steps import report as reporting

    params = config.load(args.params)
    times = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="camtune-report-bench-") as tmp:
            t0 = time.perf_counter()
            summary = reporting.build(params, Path(tmp))
            times.append(time.perf_counter() - t0)
            files = [f for f in Path(tmp).rglob("*") if f.is_file()]
            groups = {"page (index.html)": [f for f in files if f.name == "index.html"],
                      "base vs tuned pictures": [f for f in files if f.parent.name == "img"
                                                 and not f.name.startswith("finding_")],
                      "finding thumbnails": [f for f in files if f.name.startswith("finding_")],
                      "PR charts": [f for f in files if f.parent.name == "charts"]}
            kinds = {k: (len(fs), sum(f.stat().st_size for f in fs)) for k, fs in groups.items()}
    print(f"verdict: {summary['verdict']}")
    print(f"{'part':<26}{'files':>7}{'KB':>10}")
    for kind, (n, size) in kinds.items():
        print(f"{kind:<26}{n:>7}{size / 1e3:>10.1f}")
    total = sum(size for _, size in kinds.values())
    print(f"{'total':<26}{sum(n for n, _ in kinds.values()):>7}{total / 1e3:>10.1f}   (budget 5000 KB)")
    print(f"build: median {statistics.median(times):.2f} s, min {min(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
