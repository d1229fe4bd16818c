"""Guarantee 3: a deploy killed with SIGKILL at any step leaves a state that `status` explains,
and after `unlock` a later deploy finishes correctly. The fault proxy holds the request of the
step, the test kills tf-release and everything it started, then lets the request go."""

import json
import re
import subprocess

import pytest

from tests.conftest import Cli
from tests.support.faults import FaultProxy, Request, Rule
from tests.support.processes import kill_tree
from tests.support.project import image

EXAMPLE = "terraform/examples/ecs_service"


def ssm_environment_read(request: Request) -> bool:
    """The deploy's first request after taking the lock: what SSM holds for the environment."""
    return request.operation == "ssm.GetParameters" and b"/catalogue/image_ids/stage/" in (
        request.body
    )


STEPS = {
    "after the lock": ssm_environment_read,
    "during the SSM writes": lambda r: (
        r.operation == "ssm.PutParameter" and r.parameter == "/catalogue/image_ids/stage/worker"
    ),
    "during plan": lambda r: (
        r.operation == "ssm.GetParameter" and r.parameter == "/catalogue/image_ids/stage/api"
    ),
    "during apply": lambda r: r.operation == "ecs.RegisterTaskDefinition",
    "before the record": lambda r: r.method == "PUT" and "/catalogue/deployments/stage/" in r.path,
}


def pointer(cli: Cli, image_name: str) -> str:
    name = f"/catalogue/image_ids/stage/{image_name}"
    return cli.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]


def task_image(cli: Cli) -> str:
    found = cli.client("ecs").describe_task_definition(taskDefinition="catalogue-stage-api")
    return found["taskDefinition"]["containerDefinitions"][0]["image"]


@pytest.mark.parametrize("step", list(STEPS))
def test_a_deploy_killed_at_any_step_is_explained_and_recovers(
    tf_cli: Cli, proxy: FaultProxy, step: str
) -> None:
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{EXAMPLE}"\n'
        'workspace = "stage"\n'
    )
    for name in ("api", "worker"):
        tf_cli.ok("publish", name, image(name, "one"))
    tf_cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    for name in ("api", "worker"):
        tf_cli.ok("publish", name, image(name, "two"))
    tf_cli.ok("prepare", "-e", "stage", "-r", "two")

    tf_cli.env["AWS_ENDPOINT_URL"] = proxy.url  # Terraform's requests go through it too
    hold = proxy.add(Rule(STEPS[step], "hold", times=1))
    run = tf_cli.start(
        "deploy", "-e", "stage", "--yes", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert hold.reached.wait(timeout=120), f"the deploy never reached {step}"
    kill_tree(run.pid)
    run.wait(timeout=30)
    proxy.clear()

    out = tf_cli.ok("status", "-e", "stage")
    assert re.search(r"^stage +v1 +\S+ +\S+ +moto +v2 *$", out, re.M), out
    assert "a deploy is in progress or was abandoned: " in out
    assert "started deploying v2" in out and "tf-release unlock --env stage" in out
    refused = tf_cli.run("deploy", "-e", "stage", "--yes")
    assert refused.returncode == 3 and "stage is locked" in refused.stderr

    tf_cli.ok("unlock", "-e", "stage", "--yes")
    assert pointer(tf_cli, "api") == image("api", "one")  # nothing undeployed stays in SSM
    tf_cli.ok("deploy", "-e", "stage", "--yes")
    [status] = json.loads(tf_cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v2" and status["lock"] is None
    assert pointer(tf_cli, "worker") == image("worker", "two")
    assert task_image(tf_cli) == image("api", "two")
    outcomes = [
        d["outcome"]
        for d in json.loads(tf_cli.ok("show", "-e", "stage", "v2", "--json"))["deployments"]
    ]
    assert outcomes == ["succeeded", "abandoned"]
