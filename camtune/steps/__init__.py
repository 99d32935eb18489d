"""One package per pipeline step, named as its DVC stage, params section, Prefect flow and
`camtune` subcommand. Each has the same shape: `__init__.py` (the front door), pure modules, and
`flow.py` (the thin Prefect flow). A step never imports another step: steps meet through files
(camtune.contracts) and share only the layers below (core, metrics, contracts, model, training)."""
