"""Pipeline overhead of the Prefect parent flow, no-op `dvc repro` time, and which stages re-run
after a publish-only param edit.

    python benchmarks/pipeline_overhead.py            # the embedded default (minutes on 2 cores)
    python benchmarks/pipeline_overhead.py --quick    # tiny step counts and images

Runs in a temporary git copy of this repository against a real local Prefect server
(prefect_test_harness). Overhead = parent flow wall time minus the sum of the steps' own compute
(time inside each step's flow function, as each step reports it). Goals: overhead <= 10 %,
no-op `dvc repro` <= 3 s, a publish-only edit re-runs publish only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from repo_support import copy_repo, git_commit_all  # noqa: E402  (the tests' throwaway repo copy)

QUICK = ROOT / "tests" / "quick_overrides.yaml"  # tiny step counts and images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="camtune-bench-prefect-")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    for k, v in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@camtune.invalid"),
                 ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "bench@camtune.invalid")):
        os.environ.setdefault(k, v)

    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory(prefix="camtune-bench-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        git_commit_all(repo, "benchmark copy")
        os.chdir(repo)
        sys.path.insert(0, str(repo))
        overrides = yaml.safe_load(QUICK.read_text()) if args.quick else {}
        with prefect_test_harness(server_startup_timeout=180):
            from flows.pipeline import train_model

            t0 = time.perf_counter()
            state = train_model(overrides=overrides, return_state=True)
            wall = time.perf_counter() - t0
            result = state.result(raise_on_failure=False)
        if not isinstance(result, dict):
            print(f"pipeline did not complete: {state.name}: {state.message}")
            sys.exit(1)
        stages = result["stages"]
        compute = sum(s["compute"] for s in stages)
        print(f"{'stage':<12} {'dvc repro s':>12} {'step compute s':>15}")
        for s in stages:
            print(f"{s['stage']:<12} {s['seconds']:>12.1f} {s['compute']:>15.1f}")
        overhead = wall - compute
        print(f"parent flow wall time     {wall:8.1f} s")
        print(f"sum of steps' own compute {compute:8.1f} s")
        print(f"pipeline overhead         {overhead:8.1f} s = {100 * overhead / wall:.1f} % of wall (goal <= 10 %)")

        ws = Path(result["workspace"])
        gate = json.loads((ws / "artifacts/evaluate/gate.json").read_text())
        metrics = json.loads((ws / "artifacts/evaluate/metrics.json").read_text())
        print(f"gate: {'blessed' if gate['blessed'] else 'NOT blessed'}; published: "
              f"{(result.get('receipt') or {}).get('model_id')}")
        print("metrics.json:", json.dumps(metrics, sort_keys=True))
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=ws, env=env, capture_output=True)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=ws, env=env, capture_output=True, text=True)
        noop = time.perf_counter() - t0
        print(f"no-op dvc repro           {noop:8.2f} s (goal <= 3 s); exit {out.returncode}")

        from camtune.orchestration import set_params

        set_params(ws, {"publish.model_name": "renamed-by-benchmark"})
        status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=ws, env=env,
                                capture_output=True, text=True)
        changed = sorted(json.loads(status.stdout or "{}"))
        print(f"stages to re-run after a publish-only edit: {changed} (goal: ['publish'])")


if __name__ == "__main__":
    main()
