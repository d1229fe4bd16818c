"""Deploys that are interrupted, declined, or meet another deploy, with real Terraform."""

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tests.conftest import Cli
from tests.support.processes import answer_prompt
from tests.support.project import image


def slow_project(cli: Cli, seconds: int = 4) -> None:
    stack = cli.copy_fixture("slow_stack")
    (stack / "terraform.tfvars").write_text(f"seconds = {seconds}\n")
    cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
        'backend_config = { path = "state/stage.tfstate" }\n',
    )
    cli.ok("publish", "api", image("api", "one"))
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    cli.ok("publish", "api", image("api", "two"))
    cli.ok("prepare", "-e", "stage", "-r", "two")


def deploy_in_apply(cli: Cli) -> subprocess.Popen[str]:
    """A deploy of the slow project, started and waited for until its lock says `apply`."""
    stores = cli.stores()
    run = cli.start("deploy", "--env", "stage", "--yes")

    def applying() -> bool:
        lock = stores.states.get("stage")[0].lock
        return lock is not None and lock.phase == "apply"

    wait_for(applying, timeout=120)
    return run


def api_pointer(cli: Cli) -> str:
    parameter = cli.client("ssm").get_parameter(Name="/catalogue/image_ids/stage/api")
    return parameter["Parameter"]["Value"]


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_sigterm_during_apply_restores_ssm_records_cancelled_and_unlocks(tf_cli: Cli) -> None:
    slow_project(tf_cli, seconds=30)
    run = tf_cli.start("deploy", "-e", "stage", "--yes")
    wait_for(lambda: api_pointer(tf_cli) == image("api", "two"))  # SSM written, Terraform next
    time.sleep(3)  # well into plan or apply
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"tf-release: error: interrupted by SIGTERM(; the stack may be .*)?", last)
    [status] = json.loads(tf_cli.ok("status", "-e", "stage", "--json"))
    partly = status["last_attempt"].get("partly_applied", False)
    assert partly == ("partly applied" in last)  # stopped in apply: both say so; in plan: neither
    assert api_pointer(tf_cli) == image("api", "one")
    history = json.loads(tf_cli.ok("history", "-e", "stage", "--json"))
    assert [d["outcome"] for d in history[0]["deployments"]] == ["cancelled"]
    [status] = json.loads(tf_cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v1" and status["lock"] is None


def test_a_declined_plan_restores_ssm_and_records_cancelled(tf_cli: Cli) -> None:
    slow_project(tf_cli, seconds=1)
    code, seen, err = answer_prompt(
        partial(tf_cli.start, "deploy", "-e", "stage"), b"Go ahead? [y/N]", b"n\n", wait=120
    )
    assert b"~ api:" in seen and b"Terraform: 1 to add, 0 to change, 1 to destroy" in seen
    assert code == 1
    assert err.strip() == "tf-release: error: plan declined; SSM was put back as it was"
    assert api_pointer(tf_cli) == image("api", "one")
    history = json.loads(tf_cli.ok("history", "-e", "stage", "--json"))
    assert [d["outcome"] for d in history[0]["deployments"]] == ["cancelled"]


def test_lock_timeout_waits_for_the_other_deploy(tf_cli: Cli) -> None:
    slow_project(tf_cli, seconds=4)
    first = tf_cli.start("deploy", "-e", "stage", "--yes")
    wait_for(lambda: api_pointer(tf_cli) == image("api", "two"))
    second = tf_cli.start(
        "deploy", "-e", "stage", "--version", "v1", "--yes", "--lock-timeout", "120"
    )
    assert first.wait(timeout=120) == 0
    assert second.wait(timeout=120) == 0, second.communicate()
    [status] = json.loads(tf_cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v1"
    assert api_pointer(tf_cli) == image("api", "one")


def test_backend_config_reaches_terraform_init(tf_cli: Cli) -> None:
    slow_project(tf_cli, seconds=0)
    assert (tf_cli.cwd / "slow_stack/state/stage.tfstate").is_file()


def test_a_changed_backend_key_stops_the_deploy_before_anything_is_written(tf_cli: Cli) -> None:
    """A typo in the state's key: Terraform with -reconfigure would start from an empty state
    and create everything again; tf-release stops and names the migration instead."""
    slow_project(tf_cli, seconds=0)
    config = Path(tf_cli.env["TF_RELEASE_CONFIG"])
    config.write_text(config.read_text().replace("state/stage.tfstate", "state/stagee.tfstate"))
    records = len(json.loads(tf_cli.ok("history", "-e", "stage", "--json"))[0]["deployments"])
    result = tf_cli.run("deploy", "-e", "stage", "--yes")
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("tf-release: error: the Terraform backend of stage changed since ")
    assert '(path "state/stage.tfstate" → "state/stagee.tfstate")' in line
    assert "init -migrate-state -backend-config=path=state/stagee.tfstate`" in line
    assert api_pointer(tf_cli) == image("api", "one")  # nothing written
    history = json.loads(tf_cli.ok("history", "-e", "stage", "--json"))
    assert len(history[0]["deployments"]) == records
    assert not (tf_cli.cwd / "slow_stack/state/stagee.tfstate").exists()
