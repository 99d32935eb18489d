"""What the steps exchange: output paths and manifests (artifacts), the gate's decision
(verdict: gate.json's one reader and the "may publish" rule), the model registry and its stores
(registry), model and data identities (provenance). Below the model and the steps."""
