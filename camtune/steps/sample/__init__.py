"""sample: draw from the global pool the base model's training sample (`base_train`, with per-image
repeats), the global evaluation set (`global_eval`, never the user's images) and the replay set
(`replay`). Reads only the pool's and the user dataset's annotations; writes artifacts/sample/
(the three manifests and strata.csv). `camtune sample` runs it (flow.py).

Front door: `sample_from_params(params)` then `write_outputs(out_dir, result)` (draw.py).
"""
from camtune.steps.sample.draw import SampleResult, SamplingError, sample_from_params, write_outputs

__all__ = ["SampleResult", "SamplingError", "sample_from_params", "write_outputs"]
