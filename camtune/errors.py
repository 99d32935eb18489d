"""Errors a user can act on. The CLI prints their message (no stack trace) and exits non-zero."""


class StepFailed(RuntimeError):
    """A step refused its input (validation findings, unblessed model, ...). Exit code 1."""

    exit_code = 1
