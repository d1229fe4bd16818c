"""The habits of the AWS CLI, gh and helm: `-h`, global options before or after the command,
and `tf-release version`."""

import json
import platform

import pytest

from tests.cli.test_profiles import with_profile
from tests.conftest import Cli
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
    assert global_options_first(argv, {"init": {"--region"}}) == expected


def test_version_says_what_runs(cli: Cli) -> None:
    lines = cli.ok("version").splitlines()
    assert lines[:2] == [f"tf-release {__version__}", f"Python {platform.python_version()}"]
    assert lines[2].startswith("boto3 ") and lines[3].startswith("Terraform")


def test_version_json_names_each_part(cli: Cli) -> None:
    document = json.loads(cli.ok("version", "--json"))
    assert document["tf_release"] == __version__
    assert document["python"] == platform.python_version()
    assert set(document["terraform"]) >= {"path", "version"}
