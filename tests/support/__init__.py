"""The helpers several test folders share, one module per real component they stand up:
s3 (moto S3 on loopback, tiny models), frigate (Frigate's HTTP API on loopback), repo (a throwaway
git copy of this repository for DVC), service (a Prefect server + workers), export (the session's
one real export), incumbent (published and "stock" incumbents), training_data (tiny datasets),
import_graph (camtune's imports, read statically). Helpers only one step uses live beside its
tests (e.g. tests/steps/validate/builders.py)."""
