"""`verify --terraform` with real Terraform (issue #12 §4): a stack changed behind the record's
back is drift, named by resource, until a redeploy puts it right; the plan writes nothing."""

import json
import subprocess

from tests.conftest import Cli
from tests.support.assertions import snapshot
from tests.support.project import image


def test_a_stack_changed_by_hand_is_drift_until_a_redeploy(tf_cli: Cli) -> None:
    stack = tf_cli.copy_fixture("local_stack")
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
        'workspace = "stage"\n'
    )
    tf_cli.ok("publish", "api", image("api", "one"))
    tf_cli.ok("apply", "--env", "stage", "--reason", "one", "--yes")
    # someone removes the release's resource from the stack by hand
    subprocess.run(
        ["terraform", "state", "rm", "terraform_data.release"],
        cwd=stack, env={**tf_cli.env, "TF_WORKSPACE": "stage"}, capture_output=True, check=True,
    )  # fmt: skip
    state = stack / "terraform.tfstate.d" / "stage" / "terraform.tfstate"
    before = snapshot(tf_cli), state.read_bytes()

    drifted = tf_cli.run("verify", "--env", "stage", "--terraform")
    assert drifted.returncode == 4, drifted.stderr
    assert drifted.stdout.splitlines() == [
        "~ terraform terraform_data.release: create",
        "stage drifted from its record (v1): 1 difference(s); checked ssm, pointer, ecr, terraform",
    ]
    assert (snapshot(tf_cli), state.read_bytes()) == before  # no SSM, S3 or Terraform state

    tf_cli.ok("deploy", "--env", "stage", "--yes")
    agrees = tf_cli.run("verify", "--env", "stage", "--terraform")
    assert agrees.returncode == 0, agrees.stderr
    assert agrees.stdout.endswith("checked ssm, pointer, ecr, terraform\n")


def test_a_plan_that_fails_still_reports_the_drift_found_before_it(tf_cli: Cli) -> None:
    """A parameter deleted by hand: SSM's difference is told, then the plan's failure (its data
    source finds nothing), and the exit says drift."""
    stack = tf_cli.copy_fixture("local_stack")
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
        'workspace = "stage"\n'
    )
    tf_cli.ok("publish", "api", image("api", "one"))
    tf_cli.ok("apply", "--env", "stage", "--reason", "one", "--yes")
    tf_cli.client("ssm").delete_parameter(Name="/catalogue/image_ids/stage/api")

    result = tf_cli.run("verify", "--env", "stage", "--terraform")
    assert result.returncode == 4, result.stderr
    [difference, summary] = result.stdout.splitlines()
    assert difference.startswith("- api: missing from SSM")
    assert (
        summary == "stage drifted from its record (v1): 1 difference(s); checked ssm, pointer, ecr"
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tf-release: error: terraform plan failed in ")
    document = json.loads(tf_cli.run("verify", "--env", "stage", "--terraform", "--json").stdout)
    assert document["drifted"] and document["failed"].startswith("terraform plan failed")
