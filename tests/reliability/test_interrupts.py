"""Guarantee 4: Ctrl-C and SIGTERM put SSM back, record the deploy as cancelled, release the
lock, and exit 130 / 143."""

import contextlib
import json
import os
import pty
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.faults import FaultProxy, Rule
from tests.support.project import image
from tf_release.flows import release


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


def drain(controller: int) -> None:
    with contextlib.suppress(OSError):  # closed once the program ends
        while os.read(controller, 4096):
            pass


def wait_reading_terminal(pid: int) -> None:
    """Wait until the program sleeps in its read of the answer, as it does when a person types.

    A signal that lands between the prompt's echo and that read is noted by Python but wakes
    nothing: the read then blocks for ever. A person is never that quick; a test can be.
    """
    deadline = time.monotonic() + 60
    while not reading(pid):
        assert time.monotonic() < deadline, "the program never waited for an answer"
        time.sleep(0.02)


def reading(pid: int) -> bool:
    wchan = Path(f"/proc/{pid}/wchan").read_text()
    if wchan not in ("", "0"):
        return wchan == "wait_woken"  # where Linux sleeps a read of a terminal
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S"


def test_ctrl_c_at_the_question_is_recorded_as_cancelled(cli: Cli) -> None:
    """An interrupt while tf-release asks "Go ahead?" is the operator's no, not a crash."""
    stores = cli.stores()
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "one")
    release.publish(stores, "api", image("api", "two"))
    release.prepare(stores, "stage", "two")
    controller, terminal = pty.openpty()
    run = cli.start("deploy", "-e", "stage", stdin=terminal, stdout=terminal)
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while b"Go ahead? [y/N]" not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(controller, 4096)
    wait_reading_terminal(run.pid)
    run.send_signal(signal.SIGINT)  # what the terminal sends for Ctrl-C
    # keep reading the terminal, as a person's does: a full one would stop tf-release's spinner
    drained = threading.Thread(target=drain, args=(controller,), daemon=True)
    drained.start()
    _, err = run.communicate(timeout=60)
    os.close(controller)
    assert run.returncode == 130
    assert err.strip().splitlines()[-1] == "tf-release: error: interrupted"
    [status] = json.loads(cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v1" and status["lock"] is None
    assert status["last_attempt"]["outcome"] == "cancelled"
    assert status["last_attempt"]["message"] == "interrupted"
    shown = json.loads(cli.ok("show", "-e", "stage", "v2", "--json"))
    assert [d["outcome"] for d in shown["deployments"]] == ["cancelled"]
