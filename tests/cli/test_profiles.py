"""`--profile`: credentials from a named AWS profile, as operators on laptops keep them."""

from tests.conftest import Cli
from tests.support.project import UNCHECKED


def with_profile(cli: Cli, name: str) -> None:
    """Only the profile has credentials: the AWS_* keys are gone from the environment."""
    del cli.env["AWS_ACCESS_KEY_ID"], cli.env["AWS_SECRET_ACCESS_KEY"]
    with open(cli.env["AWS_SHARED_CREDENTIALS_FILE"], "w") as credentials:
        credentials.write(f"[{name}]\naws_access_key_id = deployer\naws_secret_access_key = s\n")


def test_profile_supplies_the_credentials(cli: Cli) -> None:
    with_profile(cli, "deployer")
    assert "no AWS credentials" in cli.run("status").stderr
    cli.ok("--profile", "deployer", "publish", "api", "registry.example.com/api:1")
    cli.ok("--profile", "deployer", "apply", "--env", "stage", "--reason", "one", "--yes")


def test_aws_profile_variable_works_like_the_option(cli: Cli) -> None:
    with_profile(cli, "deployer")
    cli.env["AWS_PROFILE"] = "deployer"
    cli.ok("publish", "api", "registry.example.com/api:1")


def test_an_unknown_profile_is_one_line_naming_it(cli: Cli) -> None:
    with_profile(cli, "deployer")
    result = cli.run("--profile", "nope", "status")
    assert result.returncode == 1
    assert result.stderr == (
        "tf-release: error: The config profile (nope) could not be found: "
        "check --profile / AWS_PROFILE and ~/.aws/config\n"
    )


def test_an_environment_role_is_assumed_with_the_profile_and_its_region(cli: Cli) -> None:
    with_profile(cli, "deployer")
    del cli.env["AWS_DEFAULT_REGION"]
    with open(cli.env["AWS_CONFIG_FILE"], "w") as config:
        config.write("[profile deployer]\nregion = eu-west-1\n")
    role = "arn:aws:iam::222222222222:role/release"
    with open(cli.env["TF_RELEASE_CONFIG"], "w") as config:  # no region: the profile's
        config.write(
            'project = "catalogue"\nbucket = "acme-releases"\n\n'
            '[environments.stage]\npromote_from = "latest"\n'
            f'role_arn = "{role}"\n{UNCHECKED}'
        )
    cli.ok("--profile", "deployer", "publish", "api", "registry.example.com/api:1")
    cli.ok("--profile", "deployer", "apply", "--env", "stage", "--reason", "one", "--yes")
    doctor = cli.ok("--profile", "deployer", "doctor")
    assert "ok   role_arn of stage: assumed: acting as arn:aws:sts::222222222222:" in doctor
