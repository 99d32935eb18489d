"""ingest: data in. A user's Frigate -> `data.user_dataset` (unverified images and Frigate's boxes,
`frigate`), our model's suggestions ranked for review (`suggest`), and the round trip through Label
Studio (`label_studio`) or CVAT (`cvat`) back to verified annotations (`review`: a tool's finished
reviews applied to the dataset; `tool_files`: what both tools share). Not a DVC stage: it writes the
dataset the pipeline reads. `camtune ingest <source>` runs it (flow.py).

Every writer works on the dataset's raw COCO dict (`coco`), so fields it does not know survive, and
replaces `annotations.json` in one atomic rename; no change may drop or alter a verified image or
its boxes unless the change is the verification itself (`check_verified_kept`).
"""
from camtune.steps.ingest.coco import (load_coco, empty_coco, save_coco, next_id, check_verified_kept, dvc_hint, label_ids, copy_coco, IngestError)

__all__ = ["load_coco", "empty_coco", "save_coco", "next_id", "check_verified_kept", "dvc_hint", "label_ids", "copy_coco", "IngestError"]
