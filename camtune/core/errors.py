"""Errors a user can act on. The CLI prints their message (no stack trace) and exits non-zero."""


class StepFailed(RuntimeError):
    """A step refused its input (validation findings, unblessed model, ...). Exit code 1."""

    exit_code = 1

    def __init__(self, *args):
        # the message reaches stderr, Prefect's logs and reports: never a credential in it
        from camtune.core.redaction import redact

        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))
