"""`tf-release verify` as a user runs it: exit 0 when the environment is what the record says,
4 with one line per difference when it is not, JSON for scripts, and nothing ever written."""

import json

from tests.conftest import Cli
from tests.reliability.test_locks import DiesInApply
from tests.support.assertions import assert_refused, snapshot
from tests.support.project import image
from tests.support.scenes import holding_the_lock, mark_holder_dead


def released(cli: Cli) -> None:
    for name in ("api", "worker"):
        cli.ok("publish", name, image(name, "one"))
    cli.ok("apply", "--env", "stage", "--reason", "one", "--yes")


def hand_edit(cli: Cli) -> None:
    cli.client("ssm").put_parameter(
        Name="/catalogue/image_ids/stage/api", Value=image("api", "hand-edited"), Overwrite=True
    )


def test_an_environment_as_deployed_exits_0_with_one_summary_line(cli: Cli) -> None:
    released(cli)
    result = cli.run("verify", "--env", "stage")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "stage agrees with its record (v1); checked ssm, pointer, ecr\n"


def test_drift_exits_4_with_one_line_per_difference_then_the_summary(cli: Cli) -> None:
    released(cli)
    hand_edit(cli)
    result = cli.run("verify", "--env", "stage")
    assert result.returncode == 4, result.stderr
    assert result.stdout.splitlines() == [
        f"~ api: SSM holds {image('api', 'hand-edited')}, v1 has {image('api', 'one')}",
        "stage drifted from its record (v1): 1 difference(s); checked ssm, pointer, ecr",
    ]
    assert result.stderr == ""


def test_json_lists_the_differences_and_what_was_checked(cli: Cli) -> None:
    released(cli)
    hand_edit(cli)
    result = cli.run("verify", "--env", "stage", "--json")
    assert result.returncode == 4
    assert json.loads(result.stdout) == {
        "environment": "stage",
        "version": "v1",
        "drifted": True,
        "differences": [
            {
                "kind": "changed",
                "subject": "api",
                "detail": f"SSM holds {image('api', 'hand-edited')}, v1 has {image('api', 'one')}",
            }
        ],
        "checked": ["ssm", "pointer", "ecr"],
        "lock": None,
        "notes": [],
        "failed": None,
    }


def test_verify_writes_nothing(cli: Cli) -> None:
    released(cli)
    hand_edit(cli)
    cli.client("ssm").delete_parameter(Name="/catalogue/release_version/stage")
    before = snapshot(cli)
    assert cli.run("verify", "--env", "stage").returncode == 4
    assert cli.run("verify", "--env", "stage", "--json").returncode == 4
    assert snapshot(cli) == before


def test_ecs_without_services_is_refused(cli: Cli) -> None:
    released(cli)
    assert_refused(cli, ["verify", "--env", "stage", "--ecs"], "--ecs has nothing to compare")


def test_terraform_without_a_terraform_dir_is_refused(cli: Cli) -> None:
    assert_refused(cli, ["verify", "--env", "stage", "--terraform"], "stage has no terraform_dir")


def test_status_and_unlock_point_a_partly_applied_stack_at_verify(cli: Cli) -> None:
    stores = cli.stores()
    holding_the_lock(stores, terraform=DiesInApply())
    mark_holder_dead(stores)
    pointer = "`tf-release verify --env stage --terraform` shows what Terraform would change"
    [status] = json.loads(cli.ok("status", "-e", "stage", "--json"))
    assert pointer in status["lock"]["explanation"]
    assert pointer in cli.ok("unlock", "-e", "stage", "--yes")
