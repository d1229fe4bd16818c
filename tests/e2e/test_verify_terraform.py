"""`verify --terraform` with real Terraform (issue #12 §4): a stack changed behind the record's
back is drift, named by resource, until a redeploy puts it right; the plan writes nothing."""

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
