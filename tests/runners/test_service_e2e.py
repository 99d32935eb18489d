"""camtune as a service: two Prefect process workers, each a separate process tree in its own
folder (own clone, DVC cache, DVC site cache, PREFECT_HOME, HOME, TMPDIR), sharing only the Prefect
API (`prefect server start`, with its services) and an S3 endpoint on loopback (moto, behind a
byte-counting proxy).
Quick step counts; every component real (tests/support/service.py)."""
from __future__ import annotations

import os
import time

import pytest
import yaml
from tests.support.s3 import FaultProxy
from tests.support.service import Service, prefect_server, service_overrides

USERS = ["u_demo", "u_alice", "u_bob"]
AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
       "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@pytest.fixture
def service(s3_server, s3_bucket, tmp_path):
    with prefect_server(tmp_path / "prefect-server") as api_url, FaultProxy(s3_server, fail_first=0) as proxy:
        svc = Service(tmp_path, api_url, proxy.url, s3_bucket, USERS,
                      service_overrides(proxy.url, s3_bucket, USERS, workers=2, quick=True),
                      {k: os.environ[k] for k in AWS if k in os.environ})
        svc.proxy = proxy
        try:
            svc.deploy()
            yield svc
        finally:
            svc.stop()


def _logs(svc) -> str:
    return "\n".join(f"--- {w.name}\n{w.log.read_text()[-4000:]}" for w in svc.workers if w.log and w.log.exists())


def test_many_workers_one_base_and_a_killed_worker_loses_only_its_stage(service):
    """One story, to keep the suite short: a worker dies during u_demo's fine-tune; two other
    workers then run the nightly scan over all three users."""
    from prefect.client.orchestration import get_client

    w1 = service.add_worker("w1").start()
    first = service.start_run("u_demo")
    # kill the host once the fine-tune is under way: validate, sample, the base are done and pushed
    t0 = time.time()
    while not any(r.state and r.state.is_running() for r in service.flow_runs("finetune")):
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(first).state
        assert not state.is_final(), f"{state.name}: {state.message}\n{_logs(service)}"
        assert time.time() - t0 < 900, _logs(service)
        time.sleep(1)
    w1.kill()
    assert service.history("u_demo") == []  # the killed run never finished

    for name in ("w2", "w3"):
        service.add_worker(name).start()
    out = service.scan()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + _logs(service)
    assert all(u in out.stdout for u in USERS), out.stdout

    published = service.published()
    assert set(published) == set(USERS), (published, _logs(service))
    # counted from the Prefect API (each real training is a train_base_flow flow run), not assumed:
    # the dead worker trained it, nobody trained it again
    assert service.base_trainings() == 1
    used = service.workers_used()
    assert set(used) == {"w2", "w3"} and sorted(u for us in used.values() for u in us) == sorted(USERS), used
    recs = {u: service.history(u)[-1] for u in USERS}
    assert not any(s["ran"] for r in recs.values() for s in r["stages"] if s["stage"] in ("train_base", "sample_data"))
    assert all(r["verdict"] and r["model_id"] == published[u] for u, r in recs.items())
    # u_demo on another worker: what the dead worker finished was pulled, not re-run; the stage it
    # was in ran again
    ran = {s["stage"]: s["ran"] for s in recs["u_demo"]["stages"]}
    assert ran["validate"] is False and ran["sample"] is False and ran["finetune"] is True, ran
    assert ran["publish"] is True, ran
    # the store holds what each run ran with
    params = yaml.safe_load(service.history_file("u_demo", recs["u_demo"], "params.yaml"))
    assert params["user"]["id"] == "u_demo" and params["pipeline"]["remote"]["url"].endswith("/service")
    assert service.shared_paths() == []  # three workers' folders, nothing in common
    assert service.proxy.bytes_up > 0 and service.proxy.bytes_down > 0
