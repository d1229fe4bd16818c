"""The habits of the AWS CLI, gh and helm: `-h`, global options before or after the command,
and `tf-release version`."""

import json
import platform

import pytest

from tests.cli.test_profiles import with_profile
from tests.conftest import Cli
from tests.support.assertions import snapshot
from tests.support.project import image
from tests.support.scenes import died_holding_the_lock
from tf_release import __version__
from tf_release.faces.cli import global_options_first


@pytest.mark.parametrize("args", [["-h"], ["deploy", "-h"], ["deploy", "--profile", "p", "-h"]])
def test_dash_h_is_help(cli: Cli, args: list[str]) -> None:
    result = cli.run(*args)
    assert result.returncode == 0, result.stderr
    command = " deploy" if "deploy" in args else ""
    assert result.stdout.startswith(f"Usage: tf-release{command} [OPTIONS]")


def test_a_profile_after_the_command_supplies_the_credentials(cli: Cli) -> None:
    with_profile(cli, "deployer")
    cli.ok("publish", "api", "registry.example.com/api:1", "--profile", "deployer")
    cli.ok("apply", "--env", "stage", "--reason", "one", "--yes", "--profile=deployer")


def test_a_config_after_the_command_is_the_one_read(cli: Cli) -> None:
    result = cli.run("status", "--config", "elsewhere.toml")
    assert result.returncode == 2
    assert "elsewhere.toml" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["status", "--region", "r"], ["--region", "r", "status"]),
        (["--config", "c", "status", "--profile=p"], ["--profile=p", "--config", "c", "status"]),
        (["diff", "--", "--region", "r"], ["diff", "--", "--region", "r"]),
        (["status", "--region"], ["--region", "status"]),  # click then says it needs a value
        (["init", "--region", "r"], ["init", "--region", "r"]),  # init's own --region
        (["--region", "r", "init", "--region", "s"], ["--region", "r", "init", "--region", "s"]),
    ],
)
def test_global_options_move_before_the_command(argv: list[str], expected: list[str]) -> None:
    assert global_options_first(argv, {"init": {"--region"}})[0] == expected


def test_version_says_what_runs(cli: Cli) -> None:
    lines = cli.ok("version").splitlines()
    assert lines[:2] == [f"tf-release {__version__}", f"Python {platform.python_version()}"]
    assert lines[2].startswith("boto3 ") and lines[3].startswith("Terraform")


def test_version_json_names_each_part(cli: Cli) -> None:
    document = json.loads(cli.ok("version", "--json"))
    assert document["tf_release"] == __version__
    assert document["python"] == platform.python_version()
    assert set(document["terraform"]) >= {"path", "version"}


def test_query_prints_what_it_selects_from_the_json(cli: Cli) -> None:
    cli.ok("publish", "api", image("api", "one"))
    cli.ok("apply", "--env", "stage", "--reason", "one", "--yes")
    assert json.loads(cli.ok("status", "--json", "--query", "[0].version")) == "v1"
    assert json.loads(cli.ok("--query", "python", "version", "--json")) == platform.python_version()
    statements = json.loads(cli.ok("iam-policy", "--query", "Statement[].Sid"))
    assert "Indexes" in statements


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["prepare", "-e", "stage", "-r", "x", "--json", "--query", "[["],
            "--query '[[' is not a JMESPath expression: Invalid jmespath expression: ",
        ),
        (["status", "--query", "[0]"], "--query filters JSON output: add --json"),
        (["publish", "api", image("api", "two"), "--query", "a"], "add --json"),
    ],
)
def test_a_query_that_cannot_apply_is_bad_input_and_writes_nothing(
    cli: Cli, args: list[str], message: str
) -> None:
    cli.ok("publish", "api", image("api", "one"))
    before = snapshot(cli)
    result = cli.run(*args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert snapshot(cli) == before


def test_board_takes_no_short_o_and_names_output(cli: Cli) -> None:
    result = cli.run("board", "-o", "page.html")
    assert result.returncode == 2
    assert result.stderr == (
        "tf-release: error: board writes its page with --output FILE, not -o: --output page.html\n"
    )
    assert not (cli.cwd / "page.html").exists()


def test_every_command_that_writes_says_what_it_did_in_json(cli: Cli) -> None:
    published = json.loads(cli.ok("publish", "api", image("api", "one"), "--json"))
    assert published == {
        "image": "api",
        "label": "latest",
        "url": image("api", "one"),
        "parameter": "/catalogue/image_ids/latest/api",
    }
    cli.ok("publish", "worker", image("worker", "one"))
    retired = json.loads(cli.ok("retire", "worker", "--yes", "--json"))
    assert retired == {
        "image": "worker",
        "label": "latest",
        "removed": image("worker", "one"),
        "next_removed_by": ["stage"],
    }
    assert json.loads(cli.ok("unlock", "-e", "stage", "--yes", "--json")) == {
        "environment": "stage",
        "cleared": None,
    }
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    board = json.loads(cli.ok("board", "--json"))
    assert board == {"path": "release-board.html", "days": 30, "environments": 2, "deployments": 1}
    assert (cli.cwd / "release-board.html").is_file()
    written = json.loads(cli.ok("init", "--project", "p", "--bucket", "bucket-one", "--path",
                                "new.toml", "--json"))  # fmt: skip
    assert written == {
        "path": "new.toml",
        "schema": "tf-release.schema.json",
        "project": "p",
        "bucket": "bucket-one",
        "region": None,
        "environments": ["stage", "prod"],
    }


def test_unlock_json_names_the_lock_it_cleared(cli: Cli) -> None:
    died_holding_the_lock(cli.stores())
    cleared = json.loads(cli.ok("unlock", "-e", "stage", "--yes", "--json"))["cleared"]
    assert cleared["version"] == "v2" and cleared["partly_applied"] is False


COMMANDS = [
    "publish",
    "retire",
    "prepare",
    "deploy",
    "apply",
    "rollback",
    "approve",
    "diff",
    "verify",
    "unlock",
    "history",
    "show",
    "status",
    "board",
    "repair",
    "init",
    "check-config",
    "schema",
    "doctor",
    "iam-policy",
    "policy",
    "version",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_option_values_as_a_person_would(cli: Cli, command: str) -> None:
    """`--lock-timeout SECONDS`, not `--lock-timeout <float range>`."""
    options = cli.ok(command, "-h").partition("Options:")[2]
    assert "<" not in options, options


@pytest.mark.parametrize(
    "command", ["publish", "prepare", "deploy", "apply", "rollback", "verify", "board"]
)
def test_help_shows_examples(cli: Cli, command: str) -> None:
    examples = cli.ok(command, "-h").partition("Examples:")[2].partition("Options:")[0]
    assert f"tf-release {command} " in examples


def test_help_names_the_environment_variables_read(cli: Cli) -> None:
    assert "TF_RELEASE_CONFIG" in cli.ok("-h")
    assert "TF_RELEASE_TERRAFORM" in cli.ok("deploy", "-h")
