"""One local Prefect API server shared by every step process, instead of one each.

With no `PREFECT_API_URL`, Prefect 3 starts a temporary API server in every process that runs a
flow (20-30 s on a loaded 2-core machine, with a 20 s startup timeout that a busy machine
misses). Under `dvc repro` each stage is its own process, so each stage paid that. Here the
first step process starts one server (`python -m camtune.runners.prefect_server serve`, detached), on
127.0.0.1 and a free port, on Prefect's own database in `PREFECT_HOME`, and the next steps find
it through a small state file and reuse it. It stops by itself once no step process has used it
for `CAMTUNE_PREFECT_SERVER_IDLE_TIMEOUT` seconds, or with `camtune server stop`.

Nothing of this happens when a Prefect API is configured (`PREFECT_API_URL` in the environment
or the active Prefect profile): then the steps report there. Settings (environment variables,
not params: they change how a machine runs the steps, never a result, so they must not make DVC
re-run anything):

  CAMTUNE_PREFECT_SERVER                  shared (default) | ephemeral (Prefect's own per-process server)
  CAMTUNE_PREFECT_SERVER_STARTUP_TIMEOUT  seconds to wait for the server to answer (default 120)
  CAMTUNE_PREFECT_SERVER_IDLE_TIMEOUT     seconds without a step before it stops (default 600)

Files in PREFECT_HOME: camtune-server.json (url, pid), camtune-server.log, camtune-server.lock,
camtune-server.leases/<pid> (one per step process using the server; a dead pid holds nothing).

This module imports no Prefect at top level: the supervisor process stays small.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEFAULT_STARTUP_TIMEOUT = 120.0
DEFAULT_IDLE_TIMEOUT = 600.0
POLL_S = 1.0

# Off unless the user turns them on: a closed network makes Prefect's server telemetry log
# `ERROR ... Failed to send telemetry` in every run, which reads as a failure when nothing failed.
QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the server's telemetry service
    "DO_NOT_TRACK": "1",                          # Prefect's client-side SDK analytics
}


class ServerError(RuntimeError):
    pass


def apply_quiet_defaults(environ=os.environ) -> None:
    """Analytics/telemetry off for this process and its children unless the user set them."""
    for key, value in QUIET_DEFAULTS.items():
        environ.setdefault(key, value)


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        raise ServerError(f"{name}={raw!r}: expected a number of seconds") from None


def prefect_home() -> Path:
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value()).expanduser()


class _Paths:
    def __init__(self, home: Path):
        self.home = home
        self.state = home / "camtune-server.json"
        self.log = home / "camtune-server.log"
        self.lock = home / "camtune-server.lock"
        self.leases = home / "camtune-server.leases"


@contextlib.contextmanager
def _locked(paths: _Paths):
    """An exclusive lock over the state file and leases (start-or-reuse and idle-stop are atomic)."""
    paths.home.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child (exited, not yet reaped) is not alive
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_server(pid: int) -> bool:
    """`pid` is alive and is our supervisor (a state file left by a reboot may name a pid that
    another process has since taken)."""
    if not _alive(pid):
        return False
    try:
        return b"camtune.runners.prefect_server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): liveness is all we can check


def _read_state(paths: _Paths) -> dict | None:
    try:
        state = json.loads(paths.state.read_text())
        return state if isinstance(state, dict) and "url" in state and "pid" in state else None
    except (OSError, ValueError):
        return None


def _write_state(paths: _Paths, state: dict) -> None:
    tmp = paths.state.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, paths.state)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via HTTP_PROXY


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with _DIRECT.open(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live_leases(paths: _Paths) -> list[int]:
    """Pids of step processes using the server; leases of dead processes are removed."""
    live = []
    for f in paths.leases.glob("*") if paths.leases.is_dir() else ():
        try:
            pid = int(f.name)
        except ValueError:
            continue
        if _alive(pid):
            live.append(pid)
        else:
            f.unlink(missing_ok=True)
    return live


def _take_lease(paths: _Paths) -> None:
    paths.leases.mkdir(parents=True, exist_ok=True)
    lease = paths.leases / str(os.getpid())
    lease.touch()
    atexit.register(lease.unlink, missing_ok=True)


def _log_tail(paths: _Paths, lines: int = 20) -> str:
    try:
        return "\n".join(paths.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(paths: _Paths, idle_timeout: float) -> dict:
    port = _free_port()
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    apply_quiet_defaults(env)
    # this very camtune, also when it is not installed (a workspace copy run with PYTHONPATH)
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    with open(paths.log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "camtune.runners.prefect_server", "serve", "--port", str(port),
             "--idle-timeout", str(idle_timeout), "--home", str(paths.home)],
            # detached: own session, no pipe of the step (DVC, a caller's capture_output would
            # otherwise wait for the server to exit), cwd outside any workspace
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=str(paths.home), env=env, close_fds=True,
        )
    state = {"url": f"http://127.0.0.1:{port}/api", "pid": proc.pid, "started": time.time(),
             "home": str(paths.home)}
    _write_state(paths, state)
    return state


def _wait_healthy(paths: _Paths, state: dict, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _healthy(state["url"]):
            return
        if not _alive(state["pid"]):
            raise ServerError(f"the shared Prefect server (pid {state['pid']}) exited while starting; "
                              f"last lines of {paths.log}:\n{_log_tail(paths)}")
        time.sleep(0.2)
    raise ServerError(
        f"the shared Prefect server at {state['url']} (pid {state['pid']}) did not answer within "
        f"{timeout:.0f} s. On a slow or busy machine raise CAMTUNE_PREFECT_SERVER_STARTUP_TIMEOUT; "
        f"`camtune server stop` stops it. Last lines of {paths.log}:\n{_log_tail(paths)}")


def configured_api_url() -> str | None:
    """The API the user configured (environment or active Prefect profile), if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def api_url_for_step() -> str | None:
    """The URL of the shared local server for this step process, starting it if needed, or None
    when the step should use what Prefect is configured with (a user's server, or ephemeral mode).
    Registers this process as a user of the server until it exits."""
    apply_quiet_defaults()
    mode = os.environ.get("CAMTUNE_PREFECT_SERVER", "shared").strip().lower()
    if mode not in ("shared", "ephemeral"):
        raise ServerError(f"CAMTUNE_PREFECT_SERVER={mode!r}: expected 'shared' or 'ephemeral'")
    if mode == "ephemeral" or configured_api_url():
        return None
    startup = _float_env("CAMTUNE_PREFECT_SERVER_STARTUP_TIMEOUT", DEFAULT_STARTUP_TIMEOUT)
    idle = _float_env("CAMTUNE_PREFECT_SERVER_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT)
    paths = _Paths(prefect_home())
    with _locked(paths):
        state = _read_state(paths)
        if state is None or not _is_server(state["pid"]):
            state = _spawn(paths, idle)
        # the lease is taken under the lock, so the server cannot decide it is idle in between
        _take_lease(paths)
    _wait_healthy(paths, state, startup)
    return state["url"]


@contextlib.contextmanager
def using(url: str | None):
    """Run the block against `url` (and so do child processes, e.g. Dask workers); no-op for None."""
    if url is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before


def status(home: Path | None = None) -> dict | None:
    """The shared server's state (url, pid, healthy, users) or None when none runs."""
    paths = _Paths(home or prefect_home())
    state = _read_state(paths)
    if state is None or not _is_server(state["pid"]):
        return None
    return {**state, "healthy": _healthy(state["url"]), "users": _live_leases(paths)}


def stop(home: Path | None = None, timeout: float = 15.0) -> bool:
    """Stop the shared server of this PREFECT_HOME; True when one was running."""
    paths = _Paths(home or prefect_home())
    with _locked(paths):
        state = _read_state(paths)
        paths.state.unlink(missing_ok=True)
    if state is None or not _is_server(state["pid"]):
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(state["pid"]):
        os.kill(state["pid"], signal.SIGKILL)
    return True


# ---------------------------------------------------------------- the detached supervisor


def _die_with_parent() -> None:
    """In the uvicorn child: SIGTERM when the supervisor dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(port: int, idle_timeout: float, home: Path) -> int:
    """Run Prefect's API server (as its ephemeral server runs it: no UI, the services an
    ephemeral server runs, the database in PREFECT_HOME) until idle or told to stop."""
    import importlib.util

    paths = _Paths(home)
    # uvicorn's --app-dir, as Prefect's own launcher passes it (found without importing Prefect)
    app_dir = Path(importlib.util.find_spec("prefect").origin).parent.parent
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
           "PREFECT__SERVER_FINAL": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    stopping = False

    def _term(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} camtune shared Prefect server pid {os.getpid()} "
          f"on http://127.0.0.1:{port}/api (idle timeout {idle_timeout:.0f} s)", flush=True)
    last_used = time.monotonic()
    try:
        while not stopping and server.poll() is None:
            time.sleep(POLL_S)
            with _locked(paths):
                if _live_leases(paths):
                    last_used = time.monotonic()
                elif time.monotonic() - last_used > idle_timeout:
                    state = _read_state(paths)
                    if state and state.get("pid") == os.getpid():
                        paths.state.unlink(missing_ok=True)  # under the lock: no step attaches now
                    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} idle for {idle_timeout:.0f} s, stopping",
                          flush=True)
                    break
    finally:
        with _locked(paths):
            state = _read_state(paths)
            if state and state.get("pid") == os.getpid():
                paths.state.unlink(missing_ok=True)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return 0 if stopping or server.returncode in (0, None, -signal.SIGTERM) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="camtune server",
                                 description="The local Prefect server the camtune steps share.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="show the shared server of this PREFECT_HOME")
    sub.add_parser("stop", help="stop it")
    s = sub.add_parser("serve", help="(internal) run it in the foreground")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    s.add_argument("--home", type=Path, required=True, help="PREFECT_HOME (state file, leases)")
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        return serve(args.port, args.idle_timeout, args.home)
    if args.cmd == "stop":
        print("stopped" if stop() else "no shared Prefect server is running")
        return 0
    st = status()
    print(json.dumps(st, indent=2) if st else "no shared Prefect server is running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
