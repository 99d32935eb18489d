"""publish: a blessed model (and its base) into the registry with its metadata and lineage, or
recorded as not promoted when it is worse than the incumbent; `--install-to` puts a published model
into a Frigate model_cache. Reads artifacts/export/, artifacts/evaluate/ (gate.json, metrics.json,
filters.yml, report.md), trained_on.json, the base model; writes the registry entry and
artifacts/publish/receipt.json. `camtune publish` runs it (flow.py).

Front door: `prepare` -> `upload` (release.py), `install`.
"""
from camtune.steps.publish.release import DETECTORS, Plan, install, prepare, upload, write_receipt

__all__ = ["DETECTORS", "Plan", "install", "prepare", "upload", "write_receipt"]
