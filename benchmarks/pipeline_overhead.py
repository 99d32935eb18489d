"""Pipeline overhead of the Prefect parent flow, no-op `dvc repro` time, which stages re-run
after a publish-only param edit, and what one step costs under `dvc repro` beyond its own work.

    python benchmarks/pipeline_overhead.py            # the embedded default (minutes on 2 cores)
    python benchmarks/pipeline_overhead.py --quick    # tiny step counts and images
    python benchmarks/pipeline_overhead.py --stages-only   # only the per-stage cost (about a minute)

Per-stage cost: `dvc repro` of STAGES stages, each a Prefect flow through the steps' own runner
(camtune/runners/step_runner.py) whose work is a 1 s sleep, with no PREFECT_API_URL (a new user's setup):
before = every stage starts Prefect's temporary server (CAMTUNE_PREFECT_SERVER=ephemeral), after =
the stages share one local server (the default; the first stage of the first run starts it).
Goal: <= 5 s per stage once the server runs. CPU s = all processes' user+sys, including the
shared server's (load-independent, unlike wall time on a shared machine).

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
sys.path.insert(0, str(ROOT))  # this checkout's camtune, also when another one is installed
from tests.support.repo import copy_repo, git_commit_all  # noqa: E402  (the tests' throwaway repo copy)

QUICK = ROOT / "tests" / "support" / "quick_overrides.yaml"  # tiny step counts and images
STAGES = 3
WORK_S = 1.0
STEP = f"""import sys, time
from prefect import flow
from camtune.runners import step_runner as _cli

@flow(name="bench_step")
def bench_step(params_path="params.yaml", overrides=None, name="s"):
    time.sleep({WORK_S})
    with open(f"out/{{name}}.txt", "w") as fh:
        fh.write(name)

if __name__ == "__main__":
    p = _cli.base_parser("bench step")
    p.add_argument("name")
    raise SystemExit(_cli.run(bench_step, parser=p))
"""


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def stage_overhead() -> None:
    """Per-stage cost of a 1 s step under `dvc repro`: Prefect's temporary server per stage
    (before) vs one shared local server (after), plus the same stages without Prefect."""
    import re
    import resource

    from camtune.runners import prefect_server

    with tempfile.TemporaryDirectory(prefix="camtune-bench-stages-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        (repo / "bench_step.py").write_text(STEP)
        (repo / "out").mkdir()
        stages = {f"s{i}": {"cmd": f"python bench_step.py s{i}", "outs": [f"out/s{i}.txt"]}
                  for i in range(1, STAGES + 1)}
        plain = {f"p{i}": {"cmd": f"python -c \"import time; time.sleep({WORK_S}); open('out/p{i}.txt','w')\"",
                           "outs": [f"out/p{i}.txt"]} for i in range(1, STAGES + 1)}
        (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {**stages, **plain}}))
        (repo / "dvc.lock").unlink(missing_ok=True)
        git_commit_all(repo, "stage benchmark")
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PYTHONSAFEPATH")}
        env.update(PYTHONPATH=str(repo), DVC_NO_ANALYTICS="1",
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        if sys.flags.dont_write_bytecode:
            # PYTHONDONTWRITEBYTECODE with a venv installed without .pyc files recompiles every
            # module in every process (seconds per stage); a user's environment keeps .pyc files
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            print("note: PYTHONDONTWRITEBYTECODE is set here; the stages run with a private .pyc cache")

        def repro(targets: list[str], home: Path, mode: str, **extra) -> tuple[float, float, float, str]:
            e = {**env, "PREFECT_HOME": str(home), "CAMTUNE_PREFECT_SERVER": mode, **extra}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            st = prefect_server.status(home)
            server_before = (st["pid"], _server_tree_cpu(st["pid"])) if st else (None, 0.0)
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", *targets],
                                 cwd=repo, env=e, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            st = prefect_server.status(home)
            # the shared server is detached (not our child): its CPU comes from /proc
            if st:
                server_cpu = _server_tree_cpu(st["pid"]) - (server_before[1] if st["pid"] == server_before[0] else 0.0)
            else:
                server_cpu = 0.0
            text = out.stdout + out.stderr
            if out.returncode != 0:
                why = [ln for ln in text.splitlines() if "Error" in ln or "ERROR" in ln]
                text = "FAILED: " + " / ".join(why[-2:])
            compute = sum(float(x) for x in re.findall(r"camtune: step compute ([0-9.]+)s", text))
            return wall, cpu + server_cpu, compute, text

        # warm-up: .pyc files, DVC's own first-run work; not counted
        repro(["p1"], Path(tmp) / "home-warm", "shared")
        rows = []
        plain_wall, plain_cpu, _, _ = repro(list(plain), Path(tmp) / "home-plain", "shared")
        rows.append(("same stages without Prefect (DVC + python only)", plain_wall, plain_cpu, None))
        home_eph = Path(tmp) / "home-ephemeral"
        for label, timeout in (("before: Prefect temporary server per stage (20 s timeout)", None),
                               ("before: the same with a 120 s startup timeout", "120")):
            extra = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": timeout} if timeout else {}
            w, c, _, text = repro(list(stages), home_eph, "ephemeral", **extra)
            rows.append((label, w, c, text if text.startswith("FAILED") else None))
        home = Path(tmp) / "home-shared"
        try:
            for label in ("after: shared server, first run (starts it)", "after: shared server, reused",
                          "after: shared server, reused again"):
                w, c, _, text = repro(list(stages), home, "shared")
                rows.append((label, w, c, text if text.startswith("FAILED") else None))
        finally:
            prefect_server.stop(home)
        print(f"\nper-stage cost of a {WORK_S:.0f} s step under `dvc repro` ({STAGES} stages, no PREFECT_API_URL; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"{'':<58} {'wall s/stage':>12} {'overhead s/stage':>17} {'CPU s/stage':>12}")
        for label, w, c, failed in rows:
            if failed:  # a stage failed: a per-stage figure would mean nothing
                print(f"{label:<58} {'failed after':>12} {w:>15.1f} s\n    {failed}")
            else:
                print(f"{label:<58} {w / STAGES:>12.1f} {w / STAGES - WORK_S:>17.1f} {c / STAGES:>12.1f}")
        print("goal: <= 5 s per stage (wall) once the server runs")


def _server_tree_cpu(pid: int) -> float:
    """CPU seconds of the shared server's supervisor and its uvicorn child."""
    total = _cpu_s(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(_cpu_s(int(c)) for c in children)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stages-only", action="store_true", help="only the per-stage cost")
    args = ap.parse_args()
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="camtune-bench-prefect-")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    for k, v in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@camtune.invalid"),
                 ("GIT_COMMITTER_NAME", "bench"), ("GIT_COMMITTER_EMAIL", "bench@camtune.invalid")):
        os.environ.setdefault(k, v)

    stage_overhead()
    if args.stages_only:
        return

    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory(prefix="camtune-bench-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        git_commit_all(repo, "benchmark copy")
        os.chdir(repo)
        sys.path.insert(0, str(repo))
        overrides = yaml.safe_load(QUICK.read_text()) if args.quick else {}
        with prefect_test_harness(server_startup_timeout=180):
            from camtune.runners.pipeline import train_model

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

        from camtune.runners.orchestration import set_params

        set_params(ws, {"publish.model_name": "renamed-by-benchmark"})
        status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=ws, env=env,
                                capture_output=True, text=True)
        changed = sorted(json.loads(status.stdout or "{}"))
        print(f"stages to re-run after a publish-only edit: {changed} (goal: ['publish'])")


if __name__ == "__main__":
    main()
