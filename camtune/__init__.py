"""camtune: a Frigate user's verified camera images -> a Frigate-ready detector (docs/ARCHITECTURE.md).

Importing any part of camtune first sets TensorFlow's start-up log level (camtune.core.quiet), so
no stray CUDA ERROR line reaches a CPU machine's output, whoever imports TensorFlow afterwards."""
from camtune.core.quiet import quiet_tensorflow

quiet_tensorflow()
