"""How fast camtune.steps.sample_data draws the sample data: images/s for render + JPEG encode, and the
wall time of the default-size generation (400 global + 60 user images) written to a temp folder.

    python benchmarks/sample_data.py [--images N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from camtune.core import config
from camtune.steps.sample_data import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default=str(config.ROOT / "params.yaml"))
    ap.add_argument("--images", type=int, default=None, help="global_images (default: params)")
    args = ap.parse_args()
    overrides = {"sample_data.global_images": args.images} if args.images else {}
    params = config.load(args.params, overrides)
    sd = params.sample_data
    n = sd.global_images + len(sd.users) * (sd.user_images - sd.user_images_in_pool)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = generate(params, Path(tmp) / "global", Path(tmp) / "users")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    boxes = sum(d["boxes"] for d in summary["datasets"].values())
    print(f"images drawn:   {n} ({sd.width}x{sd.height}, {boxes} boxes incl. the pooled user images twice)")
    print(f"wall:           {wall:.1f} s  ({n / wall:.1f} images/s)")
    print(f"cpu (process):  {cpu:.1f} s  ({n / cpu:.1f} images/s per core)")


if __name__ == "__main__":
    main()
