"""Guarantee 4: Ctrl-C and SIGTERM put SSM back, record the deploy as cancelled, release the
lock, and exit 130 / 143."""

import json
import signal
import time

import pytest

from tests.conftest import Cli
from tests.support.faults import FaultProxy, Rule
from tests.support.project import image
from tf_release import release


@pytest.mark.parametrize(
    "sent,code,message",
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "interrupted by SIGTERM")],
)
def test_an_interrupted_deploy_puts_everything_back(
    faulty: Cli, proxy: FaultProxy, sent: signal.Signals, code: int, message: str
) -> None:
    stores = faulty.stores()
    for name in ("api", "worker"):
        release.publish(stores, name, image(name, "one"))
    release.apply(stores, "stage", "one")
    for name in ("api", "worker"):
        release.publish(stores, name, image(name, "two"))
    release.prepare(stores, "stage", "two")

    hold = proxy.add(
        Rule(
            lambda r: (
                r.operation == "ssm.PutParameter"
                and r.parameter == "/catalogue/image_ids/stage/worker"
            ),
            "hold",
            times=1,
        )
    )
    run = faulty.start("deploy", "-e", "stage", "--yes")
    assert hold.reached.wait(timeout=60)
    run.send_signal(sent)
    time.sleep(0.5)
    proxy.clear()  # the held write fails; the interrupted deploy cleans up
    _, err = run.communicate(timeout=60)
    assert run.returncode == code, err
    assert err.strip().splitlines()[-1] == f"tf-release: error: {message}"

    assert stores.images.read("stage") == {
        "api": image("api", "one"),
        "worker": image("worker", "one"),
    }
    [status] = json.loads(faulty.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v1" and status["lock"] is None
    shown = json.loads(faulty.ok("show", "-e", "stage", "v2", "--json"))
    assert [d["outcome"] for d in shown["deployments"]] == ["cancelled"]
