"""A broken environment state, as the console script meets it: `status` names it and shows the
rest, `repair` rebuilds it from the deployment records after asking."""

import json

import pytest

from tests.conftest import Cli
from tests.support.assertions import assert_refused, snapshot
from tests.support.project import BUCKET, image
from tests.support.scenes import drop_indexes, next_prepared, released
from tf_release.flows import deploy

STATE = "catalogue/environments/stage/state.json"


@pytest.fixture
def broken(cli: Cli) -> Cli:
    """stage runs v2 after v1, prod runs v1; then stage's state is overwritten with junk."""
    stores = cli.stores()
    next_prepared(stores)
    deploy.deploy(stores, "stage")
    released(stores, ("api",), environment="prod")
    cli.client("s3").put_object(Bucket=BUCKET, Key=STATE, Body=b"\x00\x01 junk")
    return cli


def test_status_names_a_broken_state_on_its_own_line_and_shows_the_others(broken: Cli) -> None:
    result = broken.run("status")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"tf-release: error: the state of stage is broken (s3://{BUCKET}/")
    assert line.endswith("from the deployment records with `tf-release repair --env stage`")
    rows = result.stdout.splitlines()
    assert [row.split()[0] for row in rows] == ["environment", "prod"]
    as_json = broken.run("status", "--json")
    assert as_json.returncode == 1
    [stage, prod] = json.loads(as_json.stdout)
    assert set(stage) == {"environment", "error"} and prod["version"] == "v1"


def test_status_calls_a_deleted_state_missing_not_empty(broken: Cli) -> None:
    broken.client("s3").delete_object(Bucket=BUCKET, Key=STATE)
    result = broken.run("status", "--env", "stage")
    assert result.returncode == 1 and result.stdout == ""
    assert "the state of stage is missing" in result.stderr
    assert "`tf-release repair --env stage`" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["apply", "-e", "stage", "-r", "three", "--yes"],
        ["prepare", "-e", "stage", "-r", "three"],
        ["deploy", "-e", "stage", "--yes"],
        ["rollback", "-e", "stage", "-r", "back", "--yes"],
    ],
    ids=["apply", "prepare", "deploy", "rollback"],
)
def test_after_the_state_is_deleted_every_command_that_writes_waits_for_repair(
    broken: Cli, command: list[str]
) -> None:
    """Going ahead would record `previous_version: null` and a fresh state, and repair would
    then find nothing to repair: the record would lie about what ran before."""
    broken.client("s3").delete_object(Bucket=BUCKET, Key=STATE)
    broken.ok("publish", "api", image("api", "three"))
    assert_refused(broken, command, "the state of stage is missing")
    assert_refused(broken, command, "`tf-release repair --env stage`")
    broken.ok("repair", "--env", "stage", "--yes")
    assert broken.run(*command).returncode == 0


def test_repair_without_a_terminal_or_yes_writes_nothing(broken: Cli) -> None:
    assert_refused(broken, ["repair", "--env", "stage"], "pass --yes")


def test_repair_shows_what_it_writes_then_every_command_works_again(broken: Cli) -> None:
    out = broken.ok("repair", "--env", "stage", "--yes")
    assert "not valid JSON" in out
    assert "latest v2; deployed v2 by arn:aws:sts::123456789012:user/moto at " in out
    assert "1 image(s); no lock" in out and "Repaired the state of stage." in out
    [stage] = json.loads(broken.ok("status", "--env", "stage", "--json"))
    assert stage["version"] == "v2" and stage["latest_version"] == "v2"
    assert "nothing to repair" in broken.ok("repair", "--env", "stage", "--yes")


def test_repair_of_a_healthy_state_changes_nothing(cli: Cli) -> None:
    """The indexes it rebuilds from the record are, byte for byte, those the deploys wrote."""
    released(cli.stores())
    before = snapshot(cli)
    out = cli.ok("repair", "--env", "stage")  # nothing to ask about: no --yes needed
    assert out == (
        "The state of stage already matches its deployment records; nothing to repair.\n"
        "Rebuilt the indexes of stage from its records: 1 version(s), 1 period(s).\n"
    )
    assert snapshot(cli) == before


def test_repair_rebuilds_lost_indexes(cli: Cli) -> None:
    released(cli.stores())
    before = snapshot(cli)
    drop_indexes(cli.stores(), "stage")
    document = json.loads(cli.ok("repair", "--env", "stage", "--json"))
    assert document["repaired"] is False
    assert document["indexes"] == {"versions": 1, "periods": 1}
    assert snapshot(cli) == before


def test_repair_json_says_what_it_wrote(broken: Cli) -> None:
    document = json.loads(broken.ok("repair", "--env", "stage", "--yes", "--json"))
    assert document["environment"] == "stage" and document["repaired"] is True
    assert "not valid JSON" in document["problem"]
    assert document["state"]["deployed"]["version"] == "v2"


def test_repair_stopped_by_a_stray_copied_manifest_names_it_and_the_way_past_it(
    broken: Cli,
) -> None:
    s3 = broken.client("s3")
    source = "catalogue/release_manifests/stage/v1.json"
    stray = "catalogue/release_manifests/stage/v3.json"
    s3.copy_object(Bucket=BUCKET, Key=stray, CopySource={"Bucket": BUCKET, "Key": source})
    assert_refused(
        broken,
        ["repair", "--env", "stage", "--yes"],
        f"holds catalogue/stage v1, not what its key names: it was copied or moved by hand; if "
        f"that object is a stray copy, move it out of the way (`aws s3 mv s3://{BUCKET}/{stray} "
        f"s3://{BUCKET}/{stray}.stray`) and run `tf-release repair --env stage` again",
    )
    s3.copy_object(Bucket=BUCKET, Key=f"{stray}.stray", CopySource={"Bucket": BUCKET, "Key": stray})
    s3.delete_object(Bucket=BUCKET, Key=stray)
    assert "Repaired the state of stage." in broken.ok("repair", "--env", "stage", "--yes")
