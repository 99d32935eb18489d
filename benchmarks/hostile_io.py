"""Benchmark: the hostile-input corpus of the importers and exporters (issue 28).

    python benchmarks/hostile_io.py [--cases a,b] [--in-process]

Runs every case of tests/hardening/corpus.py (CVAT / Label Studio imports, the exports' --out
folder and file paths, the public-dataset import, Frigate snapshots and network bounds against
a loopback server, the report's drawing) and prints, per case: whether it was answered right
(a named refusal with nothing changed, a finding for that item only, or the right result), its
wall time, and its peak memory. Each case runs in its own subprocess, so the peak RSS is that
case's alone; "above base" subtracts the RSS right after the imports.

Measured (2 cores shared with 3 other agents' jobs): see the docstring's last run in
docs/hardening.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's camtune, and tests/ (the corpus and its helpers)
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)


def _rss_mib() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_one(name: str) -> dict:
    import logging

    logging.disable(logging.WARNING)
    from tests.hardening.corpus import CASES

    import camtune.steps.ingest.cvat  # noqa: F401  (imports before the baseline)
    import camtune.steps.ingest.label_studio  # noqa: F401
    import camtune.steps.ingest.frigate  # noqa: F401
    import camtune.steps.report.draw  # noqa: F401
    base = _rss_mib()
    with tempfile.TemporaryDirectory(prefix="camtune-hostile-") as tmp:
        t0 = time.perf_counter()
        try:
            CASES[name](Path(tmp))
            ok, why = True, ""
        except AssertionError as exc:
            ok, why = False, str(exc)[:300]
        except Exception as exc:  # noqa: BLE001 - an unexpected crash is a wrong answer too
            ok, why = False, f"{type(exc).__name__}: {str(exc)[:300]}"
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": name, "ok": ok, "why": why, "seconds": seconds, "peak_mib": peak, "base_mib": base}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--in-process", action="store_true", help="no subprocess per case (faster; peak is cumulative)")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0
    from tests.hardening.corpus import CASES

    names = [c for c in (args.cases.split(",") if args.cases else sorted(CASES))]
    rows = []
    t_all = time.perf_counter()
    for name in names:
        if args.in_process:
            rows.append(run_one(name))
        else:
            p = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True,
                               timeout=600)
            try:
                rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
            except (IndexError, ValueError):
                rows.append({"case": name, "ok": False, "why": f"crashed: {p.stderr[-300:]}", "seconds": float("nan"),
                             "peak_mib": float("nan"), "base_mib": float("nan")})
        r = rows[-1]
        print(f"{'ok   ' if r['ok'] else 'WRONG'} {r['case']:<42} {r['seconds'] * 1000:8.1f} ms  "
              f"peak {r['peak_mib']:7.1f} MiB ({r['peak_mib'] - r['base_mib']:+6.1f} above base)"
              + (f"  <- {r['why']}" if not r["ok"] else ""), flush=True)
    right = sum(r["ok"] for r in rows)
    times = sorted(r["seconds"] for r in rows)
    print(f"\n{right}/{len(rows)} cases answered right; per case median {times[len(times) // 2] * 1000:.0f} ms, "
          f"max {times[-1] * 1000:.0f} ms; peak RSS max {max(r['peak_mib'] for r in rows):.0f} MiB "
          f"(max {max(r['peak_mib'] - r['base_mib'] for r in rows):.0f} MiB above the post-import base); "
          f"wall {time.perf_counter() - t_all:.1f} s")
    return 0 if right == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
