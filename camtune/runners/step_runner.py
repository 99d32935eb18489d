"""How `camtune` runs one flow: the shared options (`--params P`, `--set k=v`), the local Prefect
server, the task runner, and a user's mistake turned into a clear message on stderr and a non-zero
exit, never a stack trace."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Callable


class _NoTracebackForUserErrors(logging.Filter):
    """Prefect logs every flow exception with its traceback; for a refusal the user can act on
    (bad params, bad dataset, failed validation, unblessed model) the message alone is the report."""

    def __init__(self, kinds: tuple[type, ...]):
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.kinds):
            record.exc_info = None
            record.exc_text = None
        return True


def common_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param by its dotted key, e.g. --set user.id=u2")
    return p


def base_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    return common_options(argparse.ArgumentParser(prog=prog, description=description,
                                                  formatter_class=argparse.RawDescriptionHelpFormatter))


def run(flow_fn: Callable, argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None,
        stage: str | None = None, **extra) -> int:
    """Parse the common arguments, run the flow, map known errors to exit codes. `stage`: the DVC
    stage this process runs (its step figures are written for the orchestrator)."""
    from camtune.core.config import ConfigError, parse_overrides
    from camtune.core.dataset import DatasetError
    from camtune.core.errors import StepFailed

    from camtune.core.redaction import install_log_redaction, redact, userinfo_problem

    quiet = _NoTracebackForUserErrors((ConfigError, DatasetError, StepFailed))
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(quiet)
    install_log_redaction()
    parser = parser or base_parser(flow_fn.__doc__ or "")
    args = parser.parse_args(argv)
    kwargs = {k: v for k, v in vars(args).items() if k not in ("params", "overrides")}
    kwargs.update(extra)
    # refused before the flow run exists: Prefect records a run's parameters (and --set values)
    for key, value in [*kwargs.items(), *((o.split("=", 1)[0], o) for o in args.overrides)]:
        problem = userinfo_problem(value, f"--{key}")
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    # one local Prefect server shared by the steps unless PREFECT_API_URL is set (not step compute)
    from camtune.runners import prefect_server

    try:
        api_url = prefect_server.api_url_for_step()
    except prefect_server.ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    try:
        from camtune.runners.task_runners import with_task_runner

        overrides = parse_overrides(args.overrides)
        flow_fn = with_task_runner(flow_fn, args.params, overrides)
        with prefect_server.using(api_url):
            flow_fn(params_path=args.params, overrides=overrides, **kwargs)
    except ConfigError as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return 2
    except DatasetError as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return 2
    except StepFailed as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return exc.exit_code
    finally:
        seconds = time.perf_counter() - t0
        print(f"camtune: step compute {seconds:.3f}s", file=sys.stderr)  # for people and benchmarks
        if stage:
            _write_step_figures(stage, seconds)
    return 0


def _write_step_figures(stage: str, seconds: float) -> None:
    """artifacts/<stage>.step.json for the parent flow's overhead accounting (orchestration.run_stage),
    when this process is a stage's command run by the orchestrator."""
    from camtune.contracts import artifacts

    if os.environ.get(artifacts.RUN_ENV):
        try:
            artifacts.write_step(stage, {"compute_s": round(seconds, 3)})
        except OSError as exc:
            print(f"warning: cannot write {artifacts.step_file(stage)}: {exc}", file=sys.stderr)
