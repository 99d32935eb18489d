"""ingest_public: a public COCO-format dataset (e.g. COCO train2017) -> a global pool of ours, its
categories mapped onto `labels.names`, images hard-linked. Reads `ingest_public.annotations` and its
images; writes `<ingest_public.out>/<ingest_public.name>`. Its own DVC stage in
ingest_public/dvc.yaml (the main pipeline never needs a COCO download); `camtune ingest_public`
runs it (flow.py).
"""
from camtune.steps.ingest_public.public_coco import parse_map, plan, public_user, read_source

__all__ = ["parse_map", "plan", "public_user", "read_source"]
