"""sample_data: the bundled synthetic world (other households' cameras for the global pool, and one
dataset per demo user) so that a fresh clone runs end to end. Reads params `sample_data` and
`labels`; writes `sample_data.global_pool` and `sample_data.users_dir`. `camtune sample_data` runs
it (flow.py).

Front door: `generate(params)`. Inside: plan.py (cameras and shots), sprites.py (the object
painters), scene.py (backgrounds, conditions, the infrared look: one image), write.py (the
datasets: COCO records, files, summary).
"""
from camtune.steps.sample_data.write import generate, summary, summary_markdown

__all__ = ["generate", "summary", "summary_markdown"]
