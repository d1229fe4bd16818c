"""--atomic with real Terraform: a change whose images apply and whose later resource fails is
taken back, so the infrastructure runs what the record says (issue #12 §1)."""

import json
import subprocess
from pathlib import Path

from tests.conftest import Cli
from tests.support.project import image


def converging_project(cli: Cli, atomic: bool = False) -> Path:
    """stage over a copy of converging_stack, running v1 (api and worker "good")."""
    stack = cli.copy_fixture("converging_stack")
    setting = "atomic = true\n" if atomic else ""
    cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n{setting}'
    )
    for name in ("api", "worker"):
        cli.ok("publish", name, image(name, "good"))
    cli.ok("apply", "--env", "stage", "-r", "good", "--yes")
    cli.ok("publish", "api", image("api", "bad"))
    return stack


def applied_images(cli: Cli, stack: Path) -> dict[str, str]:
    """What Terraform's state says each image resource holds."""
    shown = subprocess.run(
        ["terraform", "show", "-json"], cwd=stack, env=cli.env, capture_output=True, check=True
    )
    resources = json.loads(shown.stdout)["values"]["root_module"]["resources"]
    return {
        r["index"]: r["values"]["output"]
        for r in resources
        if r["address"].startswith("terraform_data.image")
    }


def newest_record(cli: Cli) -> dict:
    [status] = json.loads(cli.ok("status", "--env", "stage", "--json"))
    return status


def test_an_atomic_deploy_whose_apply_fails_converges_back_to_what_ran(tf_cli: Cli) -> None:
    stack = converging_project(tf_cli, atomic=True)
    failed = tf_cli.run("apply", "--env", "stage", "-r", "bad", "--yes", "--json")
    assert failed.returncode == 1, failed.stderr
    [line] = failed.stderr.strip().splitlines()[-1:]
    assert line.startswith("tf-release: error: terraform apply failed in "), line
    assert line.endswith("; converged back: stage runs v1 again"), line
    assert applied_images(tf_cli, stack) == {
        "api": image("api", "good"),
        "worker": image("worker", "good"),
    }
    history = json.loads(tf_cli.ok("history", "--env", "stage", "--json"))
    status = newest_record(tf_cli)
    assert status["version"] == "v1" and status["last_attempt"]["outcome"] == "failed"
    record = tf_cli.stores().deployments
    [newest, *_] = list(record.entries("stage"))
    deployment = record.get(newest)
    assert (deployment.phase, deployment.rolled_back_to, deployment.convergence) == (
        "apply",
        1,
        "succeeded",
    )
    assert history[0]["deployments"][0]["outcome"] == "failed"


def test_without_atomic_a_failed_apply_leaves_the_stack_as_terraform_left_it(
    tf_cli: Cli,
) -> None:
    stack = converging_project(tf_cli)
    failed = tf_cli.run("apply", "--env", "stage", "-r", "bad", "--yes", "--no-atomic")
    assert failed.returncode == 1, failed.stderr
    assert "converged" not in failed.stderr
    assert applied_images(tf_cli, stack)["api"] == image("api", "bad")
