"""camtune as a service on many workers: users per hour with 1, 2, ... workers side by side, and a
user's marginal cost as a share of a full run (the base amortised).

    python benchmarks/service.py --users 4 --workers 1,2 --quick --json service.json
    python benchmarks/service.py --users 3 --workers 2 --s3-endpoint http://minio:9000 --bucket camtune-bench --json out.json

For each worker count: a fresh service (tests/support/service.py) — a real Prefect API server
(`prefect server start`), an S3 store (a moto server on loopback, or --s3-endpoint: then none is
started; credentials from the AWS chain), and W `prefect worker start --limit 1` process trees, each
in its own folder with its own clone, DVC cache, PREFECT_HOME, HOME and TMPDIR. The nightly scan
(`camtune scan`) starts train_model for every demo user; the run ends when all
finished. Everything reported is read back from the Prefect API and the store's run records.
Object-store traffic is counted by a loopback proxy in front of the store (request and response
bodies).

Keys (per worker count, and at the top level for the last one): users, workers, published
(user -> model id), base_trainings, workers_used (worker -> users), wall_s, users_per_hour,
per_user_s (median wall of a run that reused the base), full_run_s (the run that trained it),
marginal_ratio (per_user_s / full_run_s; target <= 0.5), s3_bytes_up, s3_bytes_down, shared_paths
(paths two workers' folders have in common besides the store: must be empty).

On a 2-core machine the second worker competes with the first for the same two cores (training is
CPU-bound), so 2 workers cannot be twice as fast here: on N hosts they would be.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import camtune  # noqa: E402,F401  (first: TensorFlow's log level, camtune.core.quiet)

from tests.support.s3 import FaultProxy, moto_server  # noqa: E402
from tests.support.service import Service, prefect_server, service_overrides  # noqa: E402

DEMO_USERS = ["u_demo", "u_alice", "u_bob", "u_carol", "u_dave", "u_erin", "u_frank", "u_grace"]


def run_once(endpoint: str, bucket: str, users: list[str], workers: int, quick: bool, api_url: str,
             work: Path) -> dict:
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    with FaultProxy(endpoint, fail_first=0) as proxy:
        svc = Service(work, api_url, proxy.url, bucket, users,
                      service_overrides(proxy.url, bucket, users, workers, quick), aws)
        try:
            svc.deploy()
            before = svc.base_trainings()  # one Prefect server for every worker count of this run
            for i in range(workers):
                svc.add_worker(f"worker{i + 1}").start()
            t0 = time.perf_counter()
            out = svc.scan()
            wall = time.perf_counter() - t0
            if out.returncode != 0:
                raise SystemExit(f"scan failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
            recs = [r for u in users for r in svc.history(u)]
            trained = [r["wall_s"] for r in recs
                       if any(s["stage"] == "train_base" and s["ran"] for s in r["stages"])]
            reused = [r["wall_s"] for r in recs
                      if not any(s["stage"] == "train_base" and s["ran"] for s in r["stages"])]
            per_user = statistics.median(reused) if reused else None
            full = trained[0] if trained else None
            return {
                "users": len(users), "workers": workers, "published": svc.published(),
                "base_trainings": svc.base_trainings() - before, "workers_used": svc.workers_used(),
                "wall_s": round(wall, 1), "users_per_hour": round(len(users) * 3600 / wall, 2),
                "per_user_s": per_user, "full_run_s": full,
                "marginal_ratio": round(per_user / full, 3) if per_user and full else None,
                "s3_bytes_up": proxy.bytes_up, "s3_bytes_down": proxy.bytes_down,
                "shared_paths": svc.shared_paths(),
            }
        finally:
            svc.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    ap.add_argument("--quick", action="store_true", help="tiny step counts and images (tests/support/quick_overrides.yaml)")
    ap.add_argument("--s3-endpoint", default=None, help="use this S3 store (no moto server is started)")
    ap.add_argument("--bucket", default=None, help="bucket in --s3-endpoint (must exist)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.s3_endpoint and not args.bucket:
        ap.error("--s3-endpoint needs --bucket")
    users = DEMO_USERS[: args.users] if args.users <= len(DEMO_USERS) else \
        DEMO_USERS + [f"u_user{i}" for i in range(len(DEMO_USERS), args.users)]
    counts = [int(w) for w in str(args.workers).split(",")]

    results = []
    with ExitStack() as stack:
        server_home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="camtune-prefect-")))
        endpoint = args.s3_endpoint or stack.enter_context(moto_server(server_home))
        api_url = stack.enter_context(prefect_server(server_home))
        for w in counts:
            bucket = args.bucket
            if not args.s3_endpoint:
                import boto3

                bucket = f"camtune-bench-{uuid.uuid4().hex[:8]}"
                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
            with tempfile.TemporaryDirectory(prefix=f"camtune-service-{w}w-") as tmp:
                # a bucket shared between worker counts would let the second reuse the first's base
                res = run_once(endpoint, bucket if not args.s3_endpoint else bucket, users, w, args.quick,
                               api_url, Path(tmp))
            if args.s3_endpoint:
                res["note"] = "external store: runs after the first reuse its base"
            results.append(res)
            print(json.dumps(res, indent=1), flush=True)

    print("\n| workers | users | wall s | users/hour | base trainings | full run s | per user s | marginal | "
          "S3 up MB | S3 down MB | shared paths |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['workers']} | {r['users']} | {r['wall_s']} | {r['users_per_hour']} | {r['base_trainings']} | "
              f"{r['full_run_s']} | {r['per_user_s']} | {r['marginal_ratio']} | {r['s3_bytes_up'] / 1e6:.1f} | "
              f"{r['s3_bytes_down'] / 1e6:.1f} | {len(r['shared_paths'])} |")
    if len(results) > 1:
        print(f"\nspeed-up {results[-1]['workers']} vs {results[0]['workers']} workers: "
              f"{results[-1]['users_per_hour'] / results[0]['users_per_hour']:.2f}x (2 cores shared by all workers here)")
    if args.json:
        args.json.write_text(json.dumps({**results[-1], "by_workers": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
