"""`tf-release apply` driving real Terraform over the bundled example stack, against the AWS
server (moto, or ministack)."""

import json

import pytest

from tests.conftest import Cli
from tests.support.project import image

EXAMPLE = "terraform/examples/ecs_service"
ENVIRONMENTS = f"""\
[environments.stage]
promote_from  = "latest"
terraform_dir = "{EXAMPLE}"
workspace     = "stage"

[environments.prod]
promote_from  = "stage"
terraform_dir = "{EXAMPLE}"
workspace     = "prod"
var_files     = ["prod.tfvars"]
"""


def task_image(cli: Cli, family: str) -> str:
    definition = cli.client("ecs").describe_task_definition(taskDefinition=family)
    [container] = definition["taskDefinition"]["containerDefinitions"]
    return container["image"]


def example_project(cli: Cli) -> None:
    cli.write_config(ENVIRONMENTS)
    (cli.cwd / "prod.tfvars").write_text('environment = "prod"\n')
    (cli.cwd / EXAMPLE / "terraform.tfvars").write_text('environment = "stage"\n')


def publish(cli: Cli, tag: str) -> None:
    for name in ("api", "worker"):
        cli.ok("publish", name, image(name, tag))


def test_apply_registers_task_definitions_with_the_manifest_images(tf_cli: Cli) -> None:
    example_project(tf_cli)
    publish(tf_cli, "one")
    result = json.loads(tf_cli.ok("apply", "-e", "stage", "-r", "first", "--yes", "--json"))
    deployment = result["deployment"]
    assert deployment["outcome"] == "succeeded"
    assert deployment["terraform"]["add"] == 2
    assert task_image(tf_cli, "catalogue-stage-api") == image("api", "one")
    assert task_image(tf_cli, "catalogue-stage-worker") == image("worker", "one")


@pytest.mark.second_aws  # the main story: ci/ministack runs it against ministack too
def test_promotion_to_prod_and_rollback_reach_the_task_definitions(tf_cli: Cli) -> None:
    example_project(tf_cli)
    publish(tf_cli, "one")
    tf_cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    tf_cli.ok("apply", "-e", "prod", "-r", "promote one", "--yes")
    assert task_image(tf_cli, "catalogue-prod-api") == image("api", "one")

    publish(tf_cli, "two")
    tf_cli.ok("apply", "-e", "stage", "-r", "two", "--yes")
    tf_cli.ok("apply", "-e", "prod", "-r", "promote two", "--yes")
    assert task_image(tf_cli, "catalogue-prod-api") == image("api", "two")

    out = tf_cli.ok("rollback", "-e", "prod", "-r", "two is broken", "--yes")
    assert "Rolled prod back to v1 as v3." in out
    assert task_image(tf_cli, "catalogue-prod-api") == image("api", "one")
    assert task_image(tf_cli, "catalogue-stage-api") == image("api", "two")


def test_terraform_output_streams_and_the_plan_is_summarised(tf_cli: Cli) -> None:
    example_project(tf_cli)
    publish(tf_cli, "one")
    out = tf_cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    assert "Terraform has been successfully initialized" in out
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in out
    assert out.rstrip().endswith("Terraform: 2 to add, 0 to change, 0 to destroy")


def test_plan_only_puts_ssm_back_and_deploys_nothing(tf_cli: Cli) -> None:
    example_project(tf_cli)
    publish(tf_cli, "one")
    tf_cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    publish(tf_cli, "two")
    tf_cli.ok("prepare", "-e", "stage", "-r", "two")
    result = json.loads(tf_cli.ok("deploy", "-e", "stage", "--plan-only", "--json"))
    assert result["outcome"] == "planned"
    assert result["terraform"]["add"] == 2 and result["terraform"]["destroy"] == 2
    ssm = tf_cli.client("ssm")
    value = ssm.get_parameter(Name="/catalogue/image_ids/stage/api")["Parameter"]["Value"]
    assert value == image("api", "one")
    assert task_image(tf_cli, "catalogue-stage-api") == image("api", "one")
    [status] = json.loads(tf_cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v1" and status["lock"] is None


def test_the_module_route_reads_images_through_the_external_program(tf_cli: Cli) -> None:
    """Runs terraform/modules/release_manifest under real Terraform. Where the machine cannot
    install hashicorp/external, its data source is the stand-in in tests/support."""
    tf_cli.write_config(ENVIRONMENTS.replace(EXAMPLE, "terraform/examples/ecs_service_module"))
    publish(tf_cli, "one")
    tf_cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    assert task_image(tf_cli, "catalogue-stage-worker") == image("worker", "one")
    publish(tf_cli, "two")
    tf_cli.ok("apply", "-e", "stage", "-r", "two", "--yes")
    assert task_image(tf_cli, "catalogue-stage-worker") == image("worker", "two")


def test_a_failed_apply_restores_ssm_records_the_failure_and_the_next_deploy_works(
    tf_cli: Cli,
) -> None:
    stack = tf_cli.copy_fixture("failing_stack")
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
    )
    tf_cli.ok("publish", "api", image("api", "one"))
    tf_cli.ok("apply", "-e", "stage", "-r", "one", "--yes")

    (stack / "FAIL").touch()
    tf_cli.ok("publish", "api", image("api", "two"))
    failed = tf_cli.run("apply", "-e", "stage", "-r", "two", "--yes")
    assert failed.returncode == 1
    assert (
        failed.stderr.strip()
        .splitlines()[-1]
        .startswith("tf-release: error: terraform apply failed")
    )
    ssm = tf_cli.client("ssm")
    assert ssm.get_parameter(Name="/catalogue/image_ids/stage/api")["Parameter"]["Value"] == (
        image("api", "one")
    )
    pointer = ssm.get_parameter(Name="/catalogue/release_version/stage")["Parameter"]["Value"]
    assert json.loads(pointer) == {"version": "v1", "images": 1}
    history = json.loads(tf_cli.ok("history", "-e", "stage", "--json"))
    assert history[0]["version"] == "v2"
    assert [d["outcome"] for d in history[0]["deployments"]] == ["failed"]

    (stack / "FAIL").unlink()
    tf_cli.ok("deploy", "-e", "stage", "--yes")
    [status] = json.loads(tf_cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v2" and status["lock"] is None


def test_two_concurrent_deploys_one_runs_the_other_names_the_holder(tf_cli: Cli) -> None:

    stack = tf_cli.copy_fixture("slow_stack")
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
    )
    tf_cli.ok("publish", "api", image("api", "one"))
    tf_cli.ok("prepare", "-e", "stage", "-r", "one")
    runs = [tf_cli.start("deploy", "-e", "stage", "--yes") for _ in range(2)]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], results
    [(_, _, refused)] = [r for r in results if r[0] == 3]
    assert f"stage is locked: {tf_cli.caller()} on" in refused
    assert "started deploying v1" in refused


def test_init_runs_again_only_when_the_configuration_changes(tf_cli: Cli) -> None:
    example_project(tf_cli)
    publish(tf_cli, "one")
    assert "successfully initialized" in tf_cli.ok("apply", "-e", "stage", "-r", "1", "--yes")
    publish(tf_cli, "two")
    assert "successfully initialized" not in tf_cli.ok("apply", "-e", "stage", "-r", "2", "--yes")
    with (tf_cli.cwd / EXAMPLE / "main.tf").open("a") as main:
        main.write("\n# a change\n")
    publish(tf_cli, "three")
    assert "successfully initialized" in tf_cli.ok("apply", "-e", "stage", "-r", "3", "--yes")
    assert task_image(tf_cli, "catalogue-stage-api") == image("api", "three")
