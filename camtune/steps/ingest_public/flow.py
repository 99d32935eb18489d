"""ingest_public: a public COCO-format dataset -> a global pool `<ingest_public.out>/<name>` whose
images belong to the pseudo-user `public.<name>` (rules: camtune/steps/ingest_public/public_coco.py).

    camtune ingest_public --annotations instances_train2017.json --images train2017 \\
        --map person=person --map car=car --map truck=car --max-images 20000 --name coco2017

Every flag overrides its `ingest_public.*` param (a `--map` given replaces the whole map);
without flags (the DVC stage) params.yaml alone decides.
"""
from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from camtune.core import config
from camtune.steps.ingest_public import public_coco


def cli_overrides(*, annotations=None, images=None, map=None, tracked=None, max_images=None,
                  name=None, out=None, negative_share=None, link=None) -> dict:
    """CLI flags -> dotted `ingest_public.*` overrides (only the flags given)."""
    out_ = {}
    for key, value in (("annotations", annotations), ("images", images), ("max_images", max_images),
                       ("name", name), ("out", out), ("negative_share", negative_share), ("link", link)):
        if value is not None:
            out_[f"ingest_public.{key}"] = value
    if map:
        out_["ingest_public.map"] = public_coco.parse_map(map)
    if tracked:
        out_["ingest_public.tracked"] = [t for item in tracked for t in item.split(",") if t]
    return out_


@task(name="import-public-coco", cache_policy=NO_CACHE)
def run_import(params: config.Params) -> dict:
    return public_coco.ingest(params.ingest_public, params.labels)


@flow(name="ingest_public")
def ingest_public_flow(params_path: str = "params.yaml", overrides: dict | None = None,
                          **flags) -> dict:
    """Import a public COCO-format dataset as a global pool of the pseudo-user public.<name>."""
    log = get_run_logger()
    params = config.load(params_path, {**(overrides or {}), **cli_overrides(**flags)})
    s = run_import(params)
    ip = params.ingest_public
    lines = [
        f"# Public source `{ip.name}` -> `{s['out_dir']}` (user `{public_coco.public_user(ip.name)}`)", "",
        f"{s['images']} images ({s['positives']} with boxes, {s['negatives']} negatives), "
        f"{s['boxes']} boxes, from {s['source_images']} source images.", "",
        f"Dropped as incompletely labelled for our label set: {s['dropped_incomplete']} "
        f"({s['dropped_incomplete_by_reason']}).", "",
        "| label | boxes |", "| --- | ---: |",
        *[f"| {k} | {v} |" for k, v in s["boxes_per_label"].items()],
    ]
    if s["unlabelled_labels"]:
        lines += ["", f"No source category maps to: {', '.join(s['unlabelled_labels'])} "
                      f"(this source never labels them; see docs/steps/ingest.md, 'A public dataset as the global pool')."]
    create_markdown_artifact(key="ingest-public", markdown="\n".join(lines),
                             description=f"public dataset import {ip.name}")
    log.info("ingest_public: %d images (%d new, %d kept, %d removed), %d boxes -> %s",
             s["images"], s["images_written"], s["images_kept"], s["images_removed"], s["boxes"], s["out_dir"])
    if s["unlabelled_labels"]:
        log.warning("labels no source category maps to (never labelled in this pool): %s",
                    ", ".join(s["unlabelled_labels"]))
    return s


def arguments(p) -> None:
    p.add_argument("--annotations", help="the source's COCO json (ingest_public.annotations)")
    p.add_argument("--images", help="folder the source's file_name values are relative to")
    p.add_argument("--map", action="append", metavar="SRC=OURS",
                   help="map a source category to one of labels.names (repeat; replaces ingest_public.map)")
    p.add_argument("--tracked", action="append", metavar="SRC[,SRC...]",
                   help="source categories we detect: an image holding one unmapped is dropped")
    p.add_argument("--max-images", type=int)
    p.add_argument("--negative-share", type=float)
    p.add_argument("--name", help="source name; pseudo-user public.<name>, folder <out>/<name>")
    p.add_argument("--out", help="parent folder of the pool (ingest_public.out)")
    p.add_argument("--link", choices=["hardlink", "copy"])
