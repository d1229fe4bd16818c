"""Guarantee 5: throttling, 5xx and dropped connections are retried; a fault that persists fails
the deploy with one clear line and SSM put back."""

import json

from tests.conftest import Cli
from tests.support.faults import FaultProxy, Rule
from tests.support.project import image
from tf_release.flows import deploy
from tf_release.stores.ssm import ReleasePointer


def everything(request: object) -> bool:
    return True


def two_releases(cli: Cli) -> None:
    for name in ("api", "worker"):
        cli.ok("publish", name, image(name, "one"))
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    for name in ("api", "worker"):
        cli.ok("publish", name, image(name, "two"))


def test_a_burst_of_throttling_errors_and_resets_does_not_fail_a_deploy(
    faulty: Cli, proxy: FaultProxy
) -> None:
    throttled = proxy.add(Rule(everything, "throttle", every=3))
    failed = proxy.add(Rule(everything, "error", every=5))
    dropped = proxy.add(Rule(everything, "reset", every=7))
    two_releases(faulty)
    assert "Deployed v2 to stage." in faulty.ok("apply", "-e", "stage", "-r", "two", "--yes")
    assert throttled.applied and failed.applied and dropped.applied
    proxy.clear()
    [status] = json.loads(faulty.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v2"
    assert status["images"] == {"api": image("api", "two"), "worker": image("worker", "two")}


def test_persistent_throttling_fails_clearly_and_puts_ssm_back(
    faulty: Cli, proxy: FaultProxy
) -> None:
    two_releases(faulty)
    proxy.add(
        Rule(
            lambda r: (
                r.operation == "ssm.PutParameter"
                and r.parameter == "/catalogue/image_ids/stage/worker"
            ),
            "throttle",
        )
    )
    result = faulty.run("apply", "-e", "stage", "-r", "two", "--yes")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "tf-release: error: AWS error while writing /catalogue/image_ids/stage/worker to SSM: "
        "ThrottlingException"
    )
    proxy.clear()
    stores = faulty.stores()
    assert stores.images.read("stage") == {
        "api": image("api", "one"),
        "worker": image("worker", "one"),
    }
    assert stores.images.read_pointer("stage") == ReleasePointer(1, 2)
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1
    assert [e.outcome for e in stores.deployments.entries("stage")] == ["failed", "succeeded"]
    deploy.deploy(stores, "stage")  # and the next deploy goes through
    assert stores.images.read("stage")["worker"] == image("worker", "two")
