"""Bad input ends with exit 2 and one line on stderr, and writes nothing anywhere."""

import json
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.assertions import assert_refused
from tests.support.project import BUCKET, CONFIG, image
from tests.support.scenes import next_prepared


@pytest.fixture
def released(cli: Cli) -> Cli:
    """stage runs v1; v2 is prepared."""
    next_prepared(cli.stores())
    return cli


@pytest.mark.parametrize(
    "args,message",
    [
        (["prepare", "-e", "qa", "-r", "x"], "unknown environment 'qa'"),
        (["deploy", "-e", "qa", "--yes"], "unknown environment 'qa'"),
        (["publish", "API", image("api", "x")], "invalid image name 'API'"),
        (["publish", "../api", image("api", "x")], "invalid image name"),
        (["publish", "api", "nginx"], "invalid image URL 'nginx'"),
        (["publish", "api", "registry.example.com/api"], "invalid image URL"),
        (["publish", "api", "r.example.com/api:" + "t" * 129], "its tag is 129 characters long"),
        (
            ["--region", "eu-central-1", "prepare", "-e", "stage", "-r", "x"],
            "no images under /catalogue/image_ids/latest in SSM of eu-central-1 (release bucket "
            "acme-releases): publish some first (or check --region",
        ),
        (["publish", "api", image("api", "x"), "--label", "stage"], "'stage' is an environment"),
        (["prepare", "-e", "stage", "-r", ""], "the reason is empty"),
        (["prepare", "-e", "stage", "-r", "x" * 1001], "at most 1000"),
        (
            ["prepare", "-e", "stage", "-r", "x", "-i", "nope"],
            "no image nope in /catalogue/image_ids/latest",
        ),
        (["prepare", "-e", "stage", "-r", "x", "-i", "Api"], "invalid image name"),
        (["prepare", "-e", "stage", "-r", "x", "--from", "stage"], "from its own images"),
        (["deploy", "-e", "stage", "--version", "v9", "--yes"], "stage has no manifest v9"),
        (["deploy", "-e", "stage", "--version", "7", "--yes"], "invalid version '7'"),
        (["deploy", "-e", "stage", "--version", "v0", "--yes"], "invalid version 'v0'"),
        (["rollback", "-e", "stage", "-r", "x", "--to", "vx", "--yes"], "invalid version 'vx'"),
        (["rollback", "-e", "stage", "-r", "x", "--yes"], "no successful deployment before"),
        (["show", "-e", "stage", "v-1"], "invalid version 'v-1'"),
        (["status", "--at", "last tuesday"], "invalid time 'last tuesday'"),
        (["history", "-e", "stage", "--limit", "0"], "--limit must be at least 1"),
        (["prepare", "-e", "stage"], "Missing option '--reason'"),
        (["deploy", "-e", "stage", "--colour", "red"], "No such option: --colour"),
        (["deploy", "-e", "stage", "--lock-timeout", "-1", "--yes"], "--lock-timeout"),
        (["apply", "-e", "stage", "-r", "x", "--lock-timeout", "-1", "--yes"], "--lock-timeout"),
        (
            ["rollback", "-e", "stage", "-r", "x", "--lock-timeout", "-0.5", "--yes"],
            "--lock-timeout",
        ),
    ],
)
def test_bad_arguments_are_refused(released: Cli, args: list[str], message: str) -> None:
    assert_refused(released, args, message)


def test_a_missing_config_is_bad_input(released: Cli, tmp_path: Path) -> None:
    released.env["TF_RELEASE_CONFIG"] = str(tmp_path / "nowhere.toml")
    assert_refused(released, ["status"], "nowhere.toml does not exist")


def test_an_invalid_config_names_the_key(released: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(CONFIG + "\n[environments.qa]\npromote_from = 1\n")
    assert_refused(
        released,
        ["--config", str(path), "status"],
        "environments.qa.promote_from: 1 is not of type 'string'",
    )


def test_a_promotion_cycle_in_the_config_is_refused_in_a_sentence(
    released: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "cycle.toml"
    path.write_text(CONFIG.replace('promote_from = "latest"', 'promote_from = "prod"'))
    assert_refused(
        released,
        ["--config", str(path), "status"],
        "environments.stage.promote_from: stage promotes from prod, which promotes from stage "
        "(a cycle)",
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--project", 'a"b', "--bucket", BUCKET],
            "invalid project name 'a\"b': use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit",
        ),
        (
            ["--project", "catalogue", "--bucket", BUCKET, "--env", 'p"rod'],
            "invalid environment name 'p\"rod'",
        ),
        (
            ["--project", "catalogue", "--bucket", BUCKET, "--env", "latest"],
            "invalid environment name 'latest'",
        ),
        (
            ["--project", "catalogue", "--bucket", 'a"b'],
            "tf-release.toml: bucket: 'a\"b' is not an S3 bucket name: 3 to 63 lowercase letters",
        ),
        (
            ["--project", "catalogue", "--bucket", BUCKET, "--region", 'eu"x'],
            "tf-release.toml: region: 'eu\"x' is not an AWS region name, like eu-west-1",
        ),
    ],
)
def test_init_says_what_is_wrong_with_a_name_and_writes_nothing(
    cli: Cli, args: list[str], message: str
) -> None:
    del cli.env["TF_RELEASE_CONFIG"]
    cli.cwd = cli.cwd / "new-project"
    cli.cwd.mkdir()
    assert_refused(cli, ["init", *args], message)
    assert list(cli.cwd.iterdir()) == []


def test_init_into_a_folder_that_does_not_exist_is_refused_in_a_line(cli: Cli) -> None:
    del cli.env["TF_RELEASE_CONFIG"]
    cli.cwd = cli.cwd / "new-project"
    cli.cwd.mkdir()
    assert_refused(
        cli,
        ["init", "--project", "shop", "--bucket", BUCKET, "--path", "sub/x.toml"],
        "cannot write sub/x.toml: the folder sub does not exist",
    )
    assert list(cli.cwd.iterdir()) == []


def test_images_outside_the_allow_list_are_refused(released: Cli, tmp_path: Path) -> None:
    path = tmp_path / "allow.toml"
    path.write_text(CONFIG.replace("region", 'images = ["api"]\nregion'))
    assert_refused(
        released,
        ["--config", str(path), "publish", "worker", image("worker", "x")],
        "image 'worker' is not in the allow-list",
    )


def test_a_manifest_that_fails_the_schema_is_reported_with_its_key(released: Cli) -> None:
    key = "catalogue/release_manifests/stage/v2.json"
    s3 = released.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    document["images"]["api"] = "not a url"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    assert_refused(released, ["deploy", "-e", "stage", "--yes"], f"s3://{BUCKET}/{key}: ")


def test_a_hand_edited_manifest_is_not_used(released: Cli) -> None:
    key = "catalogue/release_manifests/stage/v2.json"
    s3 = released.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    document["images"]["api"] = image("api", "sneaky")
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    assert_refused(released, ["deploy", "-e", "stage", "--yes"], "checksum mismatch")


def test_no_credentials_is_an_aws_failure_that_says_what_to_set(released: Cli) -> None:
    del released.env["AWS_ACCESS_KEY_ID"], released.env["AWS_SECRET_ACCESS_KEY"]
    assert_refused(released, ["status"], "no AWS credentials", code=1)


def test_a_missing_bucket_is_an_aws_failure_naming_the_bucket(
    released: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "nobucket.toml"
    path.write_text(CONFIG.replace(BUCKET, "no-such-bucket"))
    assert_refused(
        released, ["--config", str(path), "status"], "bucket no-such-bucket does not exist", code=1
    )


def test_history_shows_the_rest_around_a_hand_edited_manifest_and_then_fails(
    released: Cli,
) -> None:
    key = "catalogue/release_manifests/stage/v2.json"
    s3 = released.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    document["images"]["api"] = image("api", "sneaky")
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    result = released.run("history", "-e", "stage")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"tf-release: error: s3://{BUCKET}/{key}: ") and "checksum" in line
    [_, *rows] = [row.split() for row in result.stdout.splitlines() if row[:1] == "v"]
    assert [row[0] for row in rows] == ["v2", "v1"], result.stdout
    assert rows[0][1].startswith("s3://")  # why, in the reason column
    as_json = released.run("history", "-e", "stage", "--json")
    assert as_json.returncode == 1
    [broken, first] = json.loads(as_json.stdout)
    assert broken["version"] == "v2" and "checksum" in broken["broken"]
    assert first["version"] == "v1" and first["deployments"]
