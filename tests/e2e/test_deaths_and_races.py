"""Deploys that die or race, with real Terraform over the local backend (issue #11): the record
they leave must be true, and nothing may run on after tf-release."""

import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import Cli
from tests.e2e.test_interrupts_and_locks import wait_for
from tests.support.processes import descendants
from tests.support.project import image


def slow_project(cli: Cli, seconds: int) -> Path:
    """Environment `slow` over a fresh copy of local_stack: no state yet, no workspace."""
    stack = cli.copy_fixture("local_stack")
    (stack / "terraform.tfvars").write_text(f'environment = "slow"\nseconds = {seconds}\n')
    cli.write_config(f'[environments.slow]\npromote_from = "latest"\nterraform_dir = "{stack}"\n')
    cli.ok("publish", "api", image("api", "one"))
    return stack


def started_under(pid: int, program: str, argument: str) -> int | None:
    """The `PROGRAM ARGUMENT ...` process that tf-release (pid) started, if one runs."""
    for child in descendants(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if Path(argv[0].decode()).name == program and argv[1:2] == [argument.encode()]:
            return child
    return None


def running(pid: int) -> bool:
    """Alive and not a zombie (a re-parented process may never be reaped in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_deploy_meeting_a_running_apply_exits_locked_naming_the_holder(tf_cli: Cli) -> None:
    """The first apply's Terraform writes terraform.tfstate (empty until it finishes) while
    the second deploy starts: the second reads no state and stops at the deploy lock."""
    slow_project(tf_cli, seconds=6)
    first = tf_cli.start("apply", "--env", "slow", "-r", "one", "--yes")
    wait_for(lambda: started_under(first.pid, "terraform", "apply") is not None)
    second = tf_cli.run("deploy", "--env", "slow", "--yes")
    assert second.returncode == 3, second.stderr
    [line] = second.stderr.strip().splitlines()
    assert line.startswith("tf-release: error: slow is locked: "), line
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err


def test_terraform_stops_when_tf_release_is_killed_during_apply(tf_cli: Cli) -> None:
    """SIGKILL to tf-release alone: Terraform gets SIGINT from the kernel and stops cleanly,
    so the slow resource never finishes."""
    stack = slow_project(tf_cli, seconds=4)
    run = tf_cli.start("apply", "--env", "slow", "-r", "one", "--yes")
    wait_for(lambda: started_under(run.pid, "sleep", "4") is not None)  # the resource's
    terraform = started_under(run.pid, "terraform", "apply")
    assert terraform is not None
    os.kill(run.pid, signal.SIGKILL)
    run.communicate(timeout=10)
    wait_for(lambda: not running(terraform), timeout=10)
    time.sleep(5)  # past the moment the apply would have finished
    assert not (stack / "applied-slow").exists()
    path = stack / "terraform.tfstate"  # none at all: Terraform stopped before recording any
    state = json.loads((path.read_text() if path.exists() else "") or "{}")
    managed = [r for r in state.get("resources", []) if r["mode"] == "managed"]
    instances = [i for r in managed for i in r["instances"]]
    assert all(instance.get("status") == "tainted" for instance in instances), instances


def workspace_image(stack: Path, workspace: str) -> str:
    path = stack / "terraform.tfstate.d" / workspace / "terraform.tfstate"
    state = json.loads(path.read_text())
    [resource] = [r for r in state["resources"] if r["type"] == "terraform_data"]
    [instance] = resource["instances"]
    return instance["attributes"]["input"]["value"]


def test_environments_sharing_a_folder_deploy_side_by_side(tf_cli: Cli) -> None:
    """The README's layout, one terraform_dir with a workspace per environment: stage and prod
    deploy at once into a folder never initialised, each into its own workspace's state.
    (Both promote from latest here, so that each manifest is fixed before they start.)"""
    stack = tf_cli.copy_fixture("local_stack")
    (stack / "terraform.tfvars").write_text("seconds = 2\n")
    tf_cli.write_config(
        "".join(
            f'[environments.{env}]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
            f'workspace = "{env}"\n\n'
            for env in ("stage", "prod")
        )
    )
    tf_cli.ok("publish", "api", image("api", "one"))
    tf_cli.ok("prepare", "-e", "prod", "-r", "one")
    tf_cli.ok("publish", "api", image("api", "two"))
    tf_cli.ok("prepare", "-e", "stage", "-r", "two")
    runs = [tf_cli.start("deploy", "-e", env, "--yes") for env in ("stage", "prod")]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    assert workspace_image(stack, "stage") == image("api", "two")
    assert workspace_image(stack, "prod") == image("api", "one")
    assert (stack / "applied-stage").is_file() and (stack / "applied-prod").is_file()
